using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using VitSharp.Inference;

namespace VitSharp.Cli.Serving;

/// <summary>
/// The parameters of a /v1/zeroshot request, from the query string, the multipart form's fields or the JSON body (each
/// parameter from one of them): <c>labels</c> (comma-separated, or a JSON array of strings), <c>templates</c> ("none",
/// a dataset of CLIP's prompts.md, or a JSON array of templates with "{}"), <c>top_k</c>. Anything else is an error.
/// </summary>
internal sealed record ZeroShotRequest(string[] Labels, string[] Templates, int TopK)
{
    public static readonly string[] Parameters = ["labels", "templates", "top_k"];

    /// <summary>The keys a JSON body may have: the image and the parameters.</summary>
    public static readonly string[] JsonKeys = ["image", .. Parameters];

    public static (ZeroShotRequest? Request, string? Error) Parse(IQueryCollection query, IFormCollection? form, JsonObject? json, ServeOptions o)
    {
        var given = new Dictionary<string, (object Value, string Where)>(StringComparer.Ordinal);
        foreach (var (key, values) in query)
        {
            if (!Parameters.Contains(key)) return (null, $"unknown query parameter '{Clip(key)}' (known: {string.Join(", ", Parameters)})");
            if (key != "labels" && values.Count > 1) return (null, $"query parameter '{key}' given {values.Count} times");
            given[key] = (string.Join(',', values.ToArray()), "query");
        }
        if (form is not null)
            foreach (var (key, values) in form)
            {
                if (key == "image") return (null, "form field 'image' is text: send the image as a file part (curl -F image=@cat.png)");
                if (!Parameters.Contains(key)) return (null, $"unknown form field '{Clip(key)}' (known: image, {string.Join(", ", Parameters)})");
                if (given.ContainsKey(key)) return (null, $"'{key}' given twice (query and form)");
                if (key != "labels" && values.Count > 1) return (null, $"form field '{key}' given {values.Count} times");
                given[key] = (string.Join(',', values.ToArray()), "form");
            }
        if (json is not null)
            foreach (var (key, value) in json)
            {
                if (key == "image") continue;
                if (given.ContainsKey(key)) return (null, $"'{key}' given twice (query and JSON body)");
                if (value is null) return (null, $"JSON \"{key}\" is null");
                given[key] = (value, "JSON");
            }

        string[] labels;
        if (!given.TryGetValue("labels", out var l)) labels = [];
        else if (l.Value is string s) labels = Split(s);
        else if (l.Value is JsonValue v && v.TryGetValue<string>(out var js)) labels = Split(js);
        else if (l.Value is JsonArray a)
        {
            labels = new string[a.Count];
            for (int i = 0; i < a.Count; i++)
            {
                if (a[i] is not JsonValue e || !e.TryGetValue<string>(out var x)) return (null, $"JSON \"labels\"[{i}] is not a string");
                labels[i] = x.Trim();
                if (labels[i].Length == 0) return (null, $"JSON \"labels\"[{i}] is empty");
            }
        }
        else return (null, "JSON \"labels\" must be an array of strings or a comma-separated string");
        if (labels.Length == 0)
            return (null, "no labels: give labels=cat,dog (query or form field) or a JSON body's \"labels\": [\"cat\", \"dog\"]");
        if (labels.Length > o.MaxLabels) return (null, $"{labels.Length} labels, over the limit of {o.MaxLabels} (serve --max-labels)");
        for (int i = 0; i < labels.Length; i++)
            if (TextError(labels[i], $"label {i}", o) is { } bad) return (null, bad);

        string[] templates = ["{}"];
        if (given.TryGetValue("templates", out var t))
        {
            string? name = t.Value as string ?? (t.Value is JsonValue tv && tv.TryGetValue<string>(out var tn) ? tn : null);
            if (name is not null)
            {
                // Only names: a path would let a client read the server's files.
                name = name.Trim();
                if (!name.Equals("none", StringComparison.OrdinalIgnoreCase) && !PromptTemplates.Names.Any(n => n.Equals(name, StringComparison.OrdinalIgnoreCase)))
                    return (null, $"templates '{Clip(name)}': neither 'none' nor one of CLIP's prompts.md: {string.Join(", ", PromptTemplates.Names)}");
                templates = PromptTemplates.Get(name);
            }
            else if (t.Value is JsonArray ta)
            {
                if (ta.Count == 0) return (null, "JSON \"templates\" is an empty array");
                if (ta.Count > o.MaxPrompts) return (null, $"{ta.Count} templates, over the limit of {o.MaxPrompts} prompts (serve --max-prompts)");
                templates = new string[ta.Count];
                for (int i = 0; i < ta.Count; i++)
                {
                    if (ta[i] is not JsonValue e || !e.TryGetValue<string>(out var x)) return (null, $"JSON \"templates\"[{i}] is not a string");
                    if (TextError(x, $"template {i}", o) is { } bad) return (null, bad);
                    if (!x.Contains("{}", StringComparison.Ordinal)) return (null, $"template {i} '{Clip(x)}' has no {{}} for the label");
                    templates[i] = x;
                }
            }
            else return (null, "JSON \"templates\" must be a name (none, or a dataset of CLIP's prompts.md) or an array of templates with {}");
        }
        if ((long)labels.Length * templates.Length > o.MaxPrompts)
            return (null, $"{labels.Length} labels × {templates.Length} templates = {(long)labels.Length * templates.Length} prompts, over the limit of {o.MaxPrompts} (serve --max-prompts)");

        int topK = 5;
        if (given.TryGetValue("top_k", out var k))
        {
            bool ok = k.Value is string ks ? int.TryParse(ks, out topK)
                : k.Value is JsonValue kv && kv.TryGetValue<int>(out topK);
            if (!ok || topK <= 0) return (null, $"top_k must be a positive integer, got '{Clip(k.Value is string raw ? raw : ((JsonNode)k.Value).ToJsonString())}'");
        }
        return (new ZeroShotRequest(labels, templates, topK), null);
    }

    /// <summary>The texts of a /v1/embed-text body <c>{"texts": [...]}</c>, or the error.</summary>
    public static (string[]? Texts, string? Error) ParseTexts(JsonObject body, ServeOptions o)
    {
        foreach (var (key, _) in body)
            if (key != "texts") return (null, $"unknown JSON key \"{Clip(key)}\": the body is {{\"texts\": [\"a photo of a cat\", ...]}}");
        if (body["texts"] is not JsonArray a) return (null, "the body must have \"texts\": an array of strings");
        if (a.Count == 0) return (null, "\"texts\" is empty: nothing to embed");
        if (a.Count > o.MaxTexts) return (null, $"{a.Count} texts, over the limit of {o.MaxTexts} (serve --max-texts)");
        var texts = new string[a.Count];
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] is not JsonValue v || !v.TryGetValue<string>(out var s)) return (null, $"\"texts\"[{i}] is not a string");
            if (s.Length > o.MaxTextChars) return (null, $"text {i} is {s.Length} characters, over the limit of {o.MaxTextChars} (serve --max-text-chars)");
            texts[i] = s;
        }
        return (texts, null);
    }

    private static string[] Split(string s) => s.Split(',').Select(x => x.Trim()).Where(x => x.Length > 0).ToArray();

    private static string? TextError(string s, string what, ServeOptions o)
    {
        if (s.Length > o.MaxTextChars) return $"{what} is {s.Length} characters, over the limit of {o.MaxTextChars} (serve --max-text-chars)";
        if (s.Any(char.IsControl)) return $"{what} '{Clip(s)}' has a control character";
        return null;
    }

    /// <summary>A client's string as quoted in an error: at most 60 characters, one line.</summary>
    internal static string Clip(string s)
    {
        var one = new string(s.Select(c => char.IsControl(c) ? ' ' : c).ToArray());
        return one.Length <= 60 ? one : one[..57] + "...";
    }
}
