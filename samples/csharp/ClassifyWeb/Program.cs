// An ASP.NET Core endpoint that holds a VitSharp model (docs/CSHARP.md):
//   dotnet run --project samples/csharp/ClassifyWeb -- --urls http://127.0.0.1:5080
//   curl --data-binary @samples/chelsea.png http://127.0.0.1:5080/classify
using VitSharp;
using VitSharp.Inference;

var builder = WebApplication.CreateBuilder(args);
// One Classifier for the app's lifetime: loading parses and prepacks the weights once. It is safe to share between
// requests (forward passes of one model run one at a time); `vit serve` adds request batching on top of this.
var modelPath = builder.Configuration["Model"] ?? Path.Combine(AppContext.BaseDirectory, "models", "cifar10_vit.bf16.safetensors");
builder.Services.AddSingleton(_ => Classifier.Load(modelPath));
var app = builder.Build();

// POST the image as the raw body; ?top_k=N. Bad images are 400s with the library's one-line message.
app.MapPost("/classify", async (HttpRequest request, Classifier classifier, int? top_k) =>
{
    using var body = new MemoryStream();
    await request.Body.CopyToAsync(body);
    try
    {
        var top = classifier.Classify(body.ToArray(), top_k ?? 5, name: "request body");
        return Results.Ok(top.Select(p => new { label = p.Label, index = p.Index, probability = p.Probability }));
    }
    catch (VitSharpException e)
    {
        return Results.BadRequest(new { error = e.Message });
    }
});
app.MapGet("/healthz", () => "ok");

app.Run();
