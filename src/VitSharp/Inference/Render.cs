using VitSharp.Checkpoints;
using VitSharp.Data;
using VitSharp.Data.Transforms;

namespace VitSharp.Inference;

/// <summary>Turns inspection results into images: tiled filters, similarity grids and heat-map overlays.</summary>
public static class Render
{
    /// <summary>Each (C, P, P) pattern scaled to [0, 255] on its own, tiled in rows of <paramref name="columns"/>, 1-pixel gaps.</summary>
    public static Image Filters(HostArray patterns, int columns, int zoom = 4)
    {
        int k = patterns.Shape[0], c = patterns.Shape[1], p = patterns.Shape[2];
        int rows = (k + columns - 1) / columns, cell = p * zoom + 1;
        int w = columns * cell + 1, h = rows * cell + 1;
        var px = new byte[w * h * 3];
        Array.Fill(px, (byte)255);
        int n = c * p * p;
        for (int f = 0; f < k; f++)
        {
            var slice = patterns.Data.AsSpan(f * n, n);
            float min = float.MaxValue, max = float.MinValue;
            foreach (var v in slice) { min = Math.Min(min, v); max = Math.Max(max, v); }
            int ox = (f % columns) * cell + 1, oy = (f / columns) * cell + 1;
            for (int y = 0; y < p * zoom; y++)
                for (int x = 0; x < p * zoom; x++)
                    for (int ch = 0; ch < 3; ch++)
                    {
                        float v = slice[(Math.Min(ch, c - 1) * p + y / zoom) * p + x / zoom];
                        px[((oy + y) * w + ox + x) * 3 + ch] = (byte)Math.Clamp((int)Math.Round(255 * (v - min) / Math.Max(max - min, 1e-12f)), 0, 255);
                    }
        }
        return new Image(w, h, 3, px);
    }

    /// <summary>The paper's position-embedding figure: one small G×G tile per grid position, its similarity to all others.</summary>
    public static Image SimilarityGrid(HostArray similarity, int grid, int zoom = 4)
    {
        int cell = grid * zoom + 2, size = grid * cell;
        var px = new byte[size * size * 3];
        Array.Fill(px, (byte)255);
        for (int i = 0; i < grid * grid; i++)
        {
            int ox = (i % grid) * cell + 1, oy = (i / grid) * cell + 1;
            for (int j = 0; j < grid * grid; j++)
            {
                var (r, g, b) = Colormap((similarity.Data[i * grid * grid + j] + 1) / 2);
                for (int y = 0; y < zoom; y++)
                    for (int x = 0; x < zoom; x++)
                    {
                        int o = ((oy + (j / grid) * zoom + y) * size + ox + (j % grid) * zoom + x) * 3;
                        (px[o], px[o + 1], px[o + 2]) = (r, g, b);
                    }
            }
        }
        return new Image(size, size, 3, px);
    }

    /// <summary>A (G, G) map in [0, 1] upsampled to the image and blended over it as a heat map.</summary>
    public static Image Overlay(Image image, HostArray map, double alpha = 0.5)
    {
        var rgb = image.ToRgb();
        int g = map.Shape[0];
        var heat = new byte[g * g];
        for (int i = 0; i < heat.Length; i++) heat[i] = (byte)Math.Clamp((int)Math.Round(map.Data[i] * 255), 0, 255);
        var up = Resize.Pil(new Image(g, g, 1, heat), rgb.Width, rgb.Height, Interpolation.Bilinear);
        var px = new byte[rgb.Width * rgb.Height * 3];
        for (int i = 0; i < rgb.Width * rgb.Height; i++)
        {
            var (r, gg, b) = Colormap(up.Pixels![i] / 255f);
            px[i * 3] = (byte)((1 - alpha) * rgb.Pixels![i * 3] + alpha * r);
            px[i * 3 + 1] = (byte)((1 - alpha) * rgb.Pixels[i * 3 + 1] + alpha * gg);
            px[i * 3 + 2] = (byte)((1 - alpha) * rgb.Pixels[i * 3 + 2] + alpha * b);
        }
        return new Image(rgb.Width, rgb.Height, 3, px);
    }

    /// <summary>Each pixel repeated <paramref name="zoom"/>×<paramref name="zoom"/> times (nearest neighbour).</summary>
    public static Image Upscale(Image image, int zoom)
    {
        if (zoom <= 1) return image;
        var rgb = image.ToRgb();
        int w = rgb.Width * zoom, h = rgb.Height * zoom;
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int s = ((y / zoom) * rgb.Width + x / zoom) * 3, d = (y * w + x) * 3;
                px[d] = rgb.Pixels![s]; px[d + 1] = rgb.Pixels[s + 1]; px[d + 2] = rgb.Pixels[s + 2];
            }
        return new Image(w, h, 3, px);
    }

    /// <summary>A horizontal colour bar: <paramref name="width"/> columns running the colour map from 0 (left) to 1 (right).</summary>
    public static Image ColourBar(Func<float, (byte R, byte G, byte B)> colormap, int width = 256, int height = 14)
    {
        var px = new byte[width * height * 3];
        for (int x = 0; x < width; x++)
        {
            var (r, g, b) = colormap(width == 1 ? 0 : x / (float)(width - 1));
            for (int y = 0; y < height; y++) { int o = (y * width + x) * 3; px[o] = r; px[o + 1] = g; px[o + 2] = b; }
        }
        return new Image(width, height, 3, px);
    }

    /// <summary>(K, G, G) maps as heat-map tiles in rows of <paramref name="columns"/>, 2-pixel white gaps; each value is
    /// mapped by <paramref name="scale"/> (tile index, value → [0, 1]) then <paramref name="colormap"/>.</summary>
    public static Image Tiles(HostArray maps, int columns, int zoom, Func<int, float, float> scale, Func<float, (byte R, byte G, byte B)> colormap)
    {
        int k = maps.Shape[0], gh = maps.Shape[1], gw = maps.Shape[2];
        columns = Math.Max(1, Math.Min(columns, k));
        int rows = (k + columns - 1) / columns, cw = gw * zoom + 2, ch = gh * zoom + 2;
        int w = columns * cw + 2, h = rows * ch + 2;
        var px = new byte[w * h * 3];
        Array.Fill(px, (byte)255);
        for (int t = 0; t < k; t++)
        {
            int ox = (t % columns) * cw + 2, oy = (t / columns) * ch + 2;
            for (int y = 0; y < gh * zoom; y++)
                for (int x = 0; x < gw * zoom; x++)
                {
                    var (r, g, b) = colormap(scale(t, maps.Data[((long)t * gh + y / zoom) * gw + x / zoom]));
                    int o = ((oy + y) * w + ox + x) * 3;
                    px[o] = r; px[o + 1] = g; px[o + 2] = b;
                }
        }
        return new Image(w, h, 3, px);
    }

    /// <summary>Blue (0) → white (½) → red (1): for signed values scaled symmetrically around zero.</summary>
    public static (byte R, byte G, byte B) Diverging(float t)
    {
        t = Math.Clamp(float.IsNaN(t) ? 0.5f : t, 0, 1);
        static byte Lerp(float a, float b, float f) => (byte)Math.Round(a + f * (b - a));
        return t < 0.5f
            ? (Lerp(33, 255, t * 2), Lerp(102, 255, t * 2), Lerp(172, 255, t * 2))
            : (Lerp(255, 178, (t - 0.5f) * 2), Lerp(255, 24, (t - 0.5f) * 2), Lerp(255, 43, (t - 0.5f) * 2));
    }

    private static readonly float[] Stops = [68, 1, 84, 59, 82, 139, 33, 145, 140, 94, 201, 98, 253, 231, 37];

    /// <summary>A perceptually ordered dark-blue → green → yellow ramp (viridis-like, piecewise linear).</summary>
    public static (byte R, byte G, byte B) Colormap(float t)
    {
        t = Math.Clamp(float.IsNaN(t) ? 0 : t, 0, 1) * 4;
        int i = Math.Min((int)t, 3);
        float f = t - i;
        byte Mix(int c) => (byte)Math.Round(Stops[i * 3 + c] + f * (Stops[(i + 1) * 3 + c] - Stops[i * 3 + c]));
        return (Mix(0), Mix(1), Mix(2));
    }
}
