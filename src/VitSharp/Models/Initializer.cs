using VitSharp.Checkpoints;

namespace VitSharp.Models;

/// <summary>
/// Deterministic random initial weights in timm's scheme: truncated normal (std 0.02) for linear and conv weights and
/// the position embedding and distillation token, small class and register tokens, zero biases, unit LayerNorm scales,
/// layer-scale gammas at init_values, the attention-pool latent at std width^-½, zero head; CCT's tokenizer convolutions
/// as CCT initialises them (nn.init.kaiming_normal_: normal, std √(2 / fan_in), fan_in = in channels × 9).
/// </summary>
public static class Initializer
{
    public static Dictionary<string, HostArray> Init(ModelConfig config, int seed, bool zeroHead = false)
    {
        var rng = new Random(seed);
        var layout = config switch
        {
            VitConfig v => VisionTransformer.Layout(v),
            MixerConfig m => MlpMixer.Layout(m),
            _ => throw new ArgumentException("unknown config"),
        };
        var d = new Dictionary<string, HostArray>();
        foreach (var (name, shape) in layout)
        {
            var a = new float[Tensors.Shape.Count(shape)];
            if (name.EndsWith(".bias")) { }
            else if (IsNorm(name)) Array.Fill(a, 1f);
            else if (name is "cls_token" or "reg_token") Fill(a, rng, 1e-6);
            else if (name.EndsWith(".gamma") && config is VitConfig ls) Array.Fill(a, ls.InitValues);
            else if (name == "attn_pool.latent") Fill(a, rng, 1 / Math.Sqrt(shape[^1]));
            else if (name.StartsWith("tokenizer.conv_layers.", StringComparison.Ordinal)) Normal(a, rng, Math.Sqrt(2.0 / (shape[1] * shape[2] * shape[3])));
            else if (name == "head.weight" && zeroHead) { }
            else Fill(a, rng, 0.02);
            d[name] = new HostArray(shape, a);
        }
        return d;
    }

    private static bool IsNorm(string name) =>
        name.EndsWith(".weight") && (name.Contains("norm") && !name.Contains("mlp"));

    private static void Normal(float[] a, Random rng, double std)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * std);
        }
    }

    private static void Fill(float[] a, Random rng, double std)
    {
        for (int i = 0; i < a.Length; i++)
        {
            double z;
            do
            {
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            } while (Math.Abs(z) > 2); // truncated at two standard deviations, like timm's trunc_normal_
            a[i] = (float)(z * std);
        }
    }
}
