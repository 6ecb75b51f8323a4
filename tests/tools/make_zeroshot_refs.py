#!/usr/bin/env python3
"""Reference data for VitSharp's zero-shot (two-tower) tests, issue 15.

    python3 tests/tools/make_zeroshot_refs.py PATH/bpe_simple_vocab_16e6.txt.gz OUT

Needs transformers (5.x), torch, sentencepiece, safetensors, Pillow; no network (nothing is loaded from a hub).
Writes OUT/zeroshot/ (copy that folder to tests/VitSharp.Tests/Data/zeroshot/):
  strings.json            the test strings (Unicode, accents, emoji, punctuation, numbers, long, empty)
  tokens.json             token ids per tokenizer: clip_full (the whole 49408-token vocabulary built from the .gz),
                          clip_tiny (the tiny model's vocabulary: the first 2000 merges), siglip_tiny (a tiny
                          SentencePiece unigram model trained here), spm_raw (sentencepiece's own ids, no HF logic)
  clip_tiny/, siglip_tiny/  save_pretrained folders (config.json, model.safetensors, tokenizer and image processor files)
  clip_refs.safetensors, siglip_refs.safetensors   pixel_values, image_embeds, text_embeds, logits_per_image
  refs.json               the texts of those embeddings, their input ids, the images' file names
  images/*.png            the images the pixel_values were made from (through each model's image processor)
  meta.json               versions, shapes, which sections worked
Each section runs on its own; the script exits non-zero when any failed, after writing those that worked.
Everything runs on the CPU in float32 with eager attention (deterministic), so no GPU is needed either.
"""
import gzip
import io
import json
import math
import os
import random
import sys
import traceback

CLIP_TINY_MERGES = 2000
SECTIONS = {}


def section(name):
    def wrap(fn):
        SECTIONS[name] = fn
        return fn
    return wrap


def test_strings():
    """About 300 deterministic strings; the same list is written to strings.json for the C# tests."""
    base = [
        "", " ", "   ", "\t\n", "a", "A", "a photo of a cat", "a photo of a dog.", "A Photo Of A CAT!",
        "Hello, World!", "hello world", "  leading and trailing spaces  ", "multiple   spaces\tand\ttabs\nand\nnewlines",
        "don't", "I'm here", "you're", "we've", "she'll", "he'd", "it's", "DON'T SHOUT", "rock'n'roll", "o'clock",
        "naïve café", "crème brûlée", "Über straße", "ÆØÅ æøå", "São Paulo", "Ça va?", "niño año", "İstanbul", "ΣΟΦΙΑ σοφία",
        "Москва", "北京", "東京タワー", "서울", "مرحبا", "שלום", "हिन्दी", "ไทย", "Ελληνικά", "Ǆungla",
        "e\u0301", "cafe\u0301", "A\u030A", "n\u0303", "\u1100\u1161\u11A8", "\uFB01 ligature", "\u2163 roman", "x\u00B2",
        "🐱", "🐶🐱🐭", "I ❤️ NY", "👍🏽", "👨‍👩‍👧", "🇫🇷 flag", "smile 😀 please", "☃ snowman", "★☆", "→ ← ↑ ↓",
        "123", "3.14159", "1,000,000", "2026-12-04", "10:30pm", "#1", "$99.99", "50%", "1st 2nd 3rd", "0x1F", "١٢٣",
        "!!!", "???", "...", "—", "–", "«quoted»", "\"double\"", "'single'", "(parens)", "[brackets]", "{braces}",
        "a-b_c.d,e;f:g", "email@example.com", "https://example.com/path?q=1", "C++ and C#", "#hashtag @mention",
        "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|startoftext|>cat<|endoftext|>", "<unk>", "</s>", "</w>",
        "a photo of a {}.", "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "art of the {}.", "a photo of the small {}.", "a black and white photo of a dog",
        "ALLCAPS", "camelCaseWord", "snake_case_word", "kebab-case-word", "MiXeD CaSe",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "the quick brown fox jumps over the lazy dog", "The Quick Brown Fox Jumps Over The Lazy Dog.",
        "\u00A0non-breaking\u00A0space", "zero\u200Bwidth", "soft\u00ADhyphen", "tab\u000Bvertical", "line\u2028separator",
        "\u3000ideographic space", "control\u0007bell", "a\u0000nul",
    ]
    long_words = " ".join(["photograph"] * 120)
    base += [long_words, "x" * 500, " ".join(str(i) for i in range(200)), ("a cat and a dog " * 40).strip(),
             "🐱" * 100, "é" * 300]
    rng = random.Random(20261204)
    pool = ["cat", "dog", "photo", "of", "a", "the", "bird", "airplane", "automobile", "ship", "truck", "frog", "horse",
            "deer", "Café", "naïve", "über", "日本", "😀", "🐱", "123", "4.5", "!", "?", ",", ".", "'s", "'ll", "-", "_",
            "  ", "\t", "résumé", "façade", "jalapeño", "Zoë", "coöperate", "ΑΒΓ", "мир", "水", "한국어", "%", "&", "@"]
    while len(base) < 300:
        n = rng.randint(1, 12)
        base.append(" ".join(rng.choice(pool) for _ in range(n)) if rng.random() < 0.7
                    else "".join(rng.choice(pool) for _ in range(n)))
    return base


def bpe_vocab(gz_path, n_merges):
    """OpenAI's/transformers' construction: 256 byte tokens (GPT-2's printable mapping, in its order), the same with
    </w>, one token per merge (lines 1..n_merges), then the two special tokens; a repeated token keeps its last id."""
    lines = gzip.open(gz_path).read().decode("utf-8").split("\n")
    merges = lines[1:n_merges + 1]
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = chars + [c + "</w>" for c in chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return dict(zip(vocab, range(len(vocab)))), merges


def write_clip_tokenizer(folder, gz_path, n_merges):
    os.makedirs(folder, exist_ok=True)
    vocab, merges = bpe_vocab(gz_path, n_merges)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab


def load_clip_tokenizer(folder):
    """transformers 5 builds tokenizers from files through from_pretrained (its constructors take vocab/merges
    objects and quietly ignore vocab_file=); 4.x accepted the file arguments. Each way is checked: a byte-level BPE
    never yields <unk> (CLIP's <unk> is <|endoftext|>, the end token) inside plain ASCII, so <unk> between the start
    and end tokens means the files were not read. The objects come first: from_pretrained would also read a stale
    tokenizer.json left in the folder."""
    import transformers
    errors = []
    vocab = json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8"))
    with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(l.split()) for l in f.read().splitlines()[1:] if l.strip()]
    builders = []
    for name in ("CLIPTokenizerFast", "CLIPTokenizer"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        builders.append((name + "(vocab=, merges=)", lambda cls=cls: cls(vocab=vocab, merges=merges, model_max_length=77)))
        builders.append((name + ".from_pretrained", lambda cls=cls: cls.from_pretrained(folder, model_max_length=77)))
        builders.append((name + "(vocab_file=)", lambda cls=cls: cls(vocab_file=os.path.join(folder, "vocab.json"),
                                                                     merges_file=os.path.join(folder, "merges.txt"),
                                                                     model_max_length=77)))
    for name, build in builders:
        try:
            tok = build()
            ids = tok("a photo of a cat")["input_ids"]
            if tok.unk_token_id is not None and tok.unk_token_id in ids[1:-1]:
                errors.append(f"{name}: <unk> in {ids}")
                continue
            return tok
        except Exception as e:  # noqa: BLE001 - try the next constructor
            errors.append(f"{name}: {e!r}")
    raise RuntimeError("no CLIP tokenizer could be built: " + "; ".join(errors))


def clip_ids(tok, strings):
    return [tok(s, truncation=True, max_length=77)["input_ids"] for s in strings]


def train_spm(out_path, strings):
    import sentencepiece as spm
    rng = random.Random(7)
    words = ["cat", "dog", "photo", "picture", "image", "bird", "plane", "car", "ship", "truck", "frog", "horse", "deer",
             "small", "large", "big", "good", "bad", "blurry", "black", "white", "of", "a", "the", "an", "and", "with",
             "cafe", "naive", "uber", "strasse", "garden", "river", "mountain", "city", "street", "night", "day",
             "one", "two", "three", "123", "2026", "rendering", "drawing", "painting", "sculpture", "origami", "toy"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(3000)]
    lines += [s.lower() for s in strings if s.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=400, model_type="unigram",
        character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
        unk_piece="<unk>", num_threads=1, seed_sentencepiece_size=20000, shuffle_input_sentence=False)
    with open(out_path, "wb") as f:
        f.write(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def load_siglip_tokenizer(spm_path):
    import transformers
    errors = []
    for name in ("SiglipTokenizer", "SiglipTokenizerFast"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            return cls(vocab_file=spm_path, model_max_length=64)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name}: {e!r}")
    raise RuntimeError("no SigLIP tokenizer could be built: " + "; ".join(errors))


def siglip_ids(tok, strings):
    return [tok(s, padding="max_length", truncation=True, max_length=64)["input_ids"] for s in strings]


def make_images(folder):
    """Four deterministic 32×32 RGB images (gradients, checkerboard, noise) and one 48×40 (exercises the resize)."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(3)
    out = []
    specs = [("gradient", 32, 32), ("checker", 32, 32), ("noise", 32, 32), ("rings", 32, 32), ("wide", 48, 40)]
    for name, w, h in specs:
        img = Image.new("RGB", (w, h))
        px = img.load()
        for y in range(h):
            for x in range(w):
                if name == "gradient":
                    px[x, y] = (x * 8 % 256, y * 8 % 256, (x + y) * 4 % 256)
                elif name == "checker":
                    v = 230 if (x // 4 + y // 4) % 2 else 20
                    px[x, y] = (v, 255 - v, v // 2)
                elif name == "noise":
                    px[x, y] = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
                elif name == "rings":
                    r = int(math.hypot(x - 16, y - 16) * 16) % 256
                    px[x, y] = (r, 128, 255 - r)
                else:
                    px[x, y] = ((x * 5) % 256, (y * 6) % 256, 90)
        path = os.path.join(folder, name + ".png")
        img.save(path)
        out.append(name + ".png")
    return out


TEXTS = ["a photo of a cat", "a photo of a dog", "a blurry photo of a bird", "an origami airplane",
         "Crème brûlée 🍮", "", "A PHOTO OF THE BIG TRUCK!!!", " ".join(["long"] * 90)]


def eager(cfg):
    """Eager attention: the plain softmax(q·kᵀ)·v (sdpa would do as well in float32 on the CPU)."""
    for c in (cfg, getattr(cfg, "text_config", None), getattr(cfg, "vision_config", None)):
        try:
            c._attn_implementation = "eager"
        except Exception:  # noqa: BLE001 - older/newer configs: keep the default
            pass


def run_pair(model, processor_images, texts, tok, pad_max):
    import torch
    if pad_max:
        enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
        kwargs = {"input_ids": enc["input_ids"]}
    else:
        enc = tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    with torch.no_grad():
        out = model(pixel_values=processor_images, **kwargs)
    return enc["input_ids"].tolist(), out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    gz_path, out_root = sys.argv[1], sys.argv[2]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    out = os.path.join(out_root, "zeroshot")
    os.makedirs(out, exist_ok=True)
    strings = test_strings()
    with open(os.path.join(out, "strings.json"), "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=False, indent=0)
    meta = {"strings": len(strings), "clip_tiny_merges": CLIP_TINY_MERGES, "sections": {}, "versions": {}}
    for mod in ("transformers", "torch", "sentencepiece", "safetensors", "PIL", "tokenizers"):
        try:
            meta["versions"][mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            meta["versions"][mod] = f"unavailable: {e!r}"
    tokens = {}
    refs = {}
    state = {}

    @section("clip_full_tokens")
    def _():
        tmp = os.path.join(out_root, "_clip_full_tokenizer")
        write_clip_tokenizer(tmp, gz_path, 49152 - 256 - 2)
        tok = load_clip_tokenizer(tmp)
        tokens["clip_full"] = clip_ids(tok, strings)
        tokens["clip_full_class"] = type(tok).__name__
        assert tokens["clip_full"][strings.index("a photo of a cat")] == [49406, 320, 1125, 539, 320, 2368, 49407], \
            tokens["clip_full"][strings.index("a photo of a cat")]

    @section("clip_tiny_model")
    def _():
        import torch
        from transformers import CLIPConfig, CLIPModel, CLIPImageProcessor
        folder = os.path.join(out, "clip_tiny")
        vocab = write_clip_tokenizer(folder, gz_path, CLIP_TINY_MERGES)
        tok = load_clip_tokenizer(folder)
        tok.save_pretrained(folder)
        tokens["clip_tiny"] = clip_ids(tok, strings)
        tokens["clip_tiny_class"] = type(tok).__name__
        bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
        cfg = CLIPConfig(
            text_config=dict(vocab_size=max(vocab.values()) + 1, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=77, bos_token_id=bos, eos_token_id=eos,
                             pad_token_id=eos, hidden_act="quick_gelu"),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=32, patch_size=8, hidden_act="quick_gelu"),
            projection_dim=16)
        eager(cfg)
        torch.manual_seed(0)
        model = CLIPModel(cfg).eval()
        with torch.no_grad():  # larger than the init's 0.02 so that the towers' outputs differ visibly per input
            for p in model.parameters():
                if p.dim() >= 2:
                    p.normal_(0, 0.3)
        model.save_pretrained(folder, safe_serialization=True)
        proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        proc.save_pretrained(folder)
        state["clip"] = (model, tok, proc)

    @section("siglip_tiny_model")
    def _():
        import torch
        from transformers import SiglipConfig, SiglipModel, SiglipImageProcessor
        folder = os.path.join(out, "siglip_tiny")
        os.makedirs(folder, exist_ok=True)
        spm_path = os.path.join(folder, "spiece.model")
        sp = train_spm(spm_path, strings)
        tokens["spm_raw"] = [sp.encode(s) for s in strings]
        tok = load_siglip_tokenizer(spm_path)
        tok.save_pretrained(folder)
        tokens["siglip_tiny"] = siglip_ids(tok, strings)
        tokens["siglip_tiny_class"] = type(tok).__name__
        cfg = SiglipConfig(
            text_config=dict(vocab_size=sp.get_piece_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=64),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=32, patch_size=8))
        eager(cfg)
        torch.manual_seed(1)
        model = SiglipModel(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.normal_(0, 0.3)
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-2.5)
        model.save_pretrained(folder, safe_serialization=True)
        proc = SiglipImageProcessor(size={"height": 32, "width": 32})
        proc.save_pretrained(folder)
        state["siglip"] = (model, tok, proc)

    @section("embeddings")
    def _():
        from PIL import Image
        from safetensors.torch import save_file
        names = make_images(os.path.join(out, "images"))
        refs["images"] = names
        refs["texts"] = TEXTS
        failures = []
        for fam in ("clip", "siglip"):
            if fam not in state:
                failures.append(f"{fam}: model section failed")
                continue
            model, tok, proc = state[fam]
            imgs = [Image.open(os.path.join(out, "images", n)).convert("RGB") for n in names]
            pv = proc(images=imgs, return_tensors="pt")["pixel_values"]
            ids, o = run_pair(model, pv, TEXTS, tok, pad_max=(fam == "siglip"))
            refs[fam + "_input_ids"] = ids
            save_file({"pixel_values": pv.contiguous(), "image_embeds": o.image_embeds.contiguous(),
                       "text_embeds": o.text_embeds.contiguous(), "logits_per_image": o.logits_per_image.contiguous()},
                      os.path.join(out, fam + "_refs.safetensors"))
            refs[fam + "_logit_scale"] = float(model.logit_scale)
        if failures:
            raise RuntimeError("; ".join(failures))

    failed = []
    for name, fn in SECTIONS.items():
        try:
            fn()
            meta["sections"][name] = "ok"
        except Exception as e:  # noqa: BLE001 - report, keep going
            traceback.print_exc()
            meta["sections"][name] = f"failed: {e!r}"
            failed.append(name)
    with open(os.path.join(out, "tokens.json"), "w", encoding="utf-8") as f:
        json.dump(tokens, f)
    with open(os.path.join(out, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False)
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, x)) for d, _, fs in os.walk(out) for x in fs)
    print(f"wrote {out} ({total / 1e6:.2f} MB); sections: {meta['sections']}")
    if failed:
        print("FAILED sections: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
