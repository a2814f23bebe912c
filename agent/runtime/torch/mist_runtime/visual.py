"""Visual sentences for LVM training (research/seeds.md §1): images -> VQ tokens -> sentences of N images.

The production tokenizer is LVM's VQGAN (f=16, 8192 codes, 256 tokens per 256x256 image); it plugs in through the
`VisualTokenizer` interface (`VQGANTokenizer` wraps any encoder callable that returns code indices). So that the
LVM path runs end to end on a CPU with no downloads, this module also has a built-in maker: procedural images
(a coloured square moving over a background, one "video" per sentence) tokenised by a patch VQ tokenizer whose
codebook is learnt with k-means.

    python3 -m mist_runtime.visual make --out DIR [--sentences 512] [--images-per-sentence 4]
        [--tokens-per-image 16] [--vocab 256] [--seed 0]
writes uint16 token shards + index.json (kind "visual") that `train.py --data DIR` reads.
"""
import argparse
import math

import torch


class VisualTokenizer:
    """Encodes images [N, 3, H, W] (floats in [0, 1]) into code indices [N, tokens_per_image]."""

    codebook_size = 0
    tokens_per_image = 0
    image_size = 0

    def encode(self, images):
        raise NotImplementedError


class PatchKMeansTokenizer(VisualTokenizer):
    def __init__(self, tokens_per_image=16, codebook_size=64, patch=4, seed=0):
        g = int(math.isqrt(tokens_per_image))
        if g * g != tokens_per_image:
            raise ValueError("tokens_per_image must be a square (got %d)" % tokens_per_image)
        self.grid, self.patch = g, patch
        self.tokens_per_image = tokens_per_image
        self.image_size = g * patch
        self.codebook_size = codebook_size
        self.seed = seed
        self.codebook = None

    def patches(self, images):
        n, c, _, _ = images.shape
        p, g = self.patch, self.grid
        x = images.reshape(n, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(n, g * g, c * p * p)

    def fit(self, images, iters=12):
        x = self.patches(images).reshape(-1, images.shape[1] * self.patch * self.patch)
        gen = torch.Generator().manual_seed(self.seed + 101)
        k = min(self.codebook_size, x.shape[0])
        cb = x[torch.randperm(x.shape[0], generator=gen)[:k]].clone()
        for _ in range(iters):
            assign = torch.cdist(x, cb).argmin(dim=1)
            for j in range(k):
                sel = x[assign == j]
                if sel.shape[0]:
                    cb[j] = sel.mean(dim=0)
        self.codebook = cb
        return self

    def encode(self, images):
        x = self.patches(images)
        n, t, dim = x.shape
        return torch.cdist(x.reshape(-1, dim), self.codebook).argmin(dim=1).reshape(n, t)


class VQGANTokenizer(VisualTokenizer):
    """LVM's production tokenizer: f=16 VQGAN, 8192 codes, 256x256 images -> 16x16 = 256 tokens. `encoder` is any
    callable mapping images [N, 3, 256, 256] in [-1, 1] to indices [N, 16, 16] (e.g. a loaded MUSE/VQGAN encoder);
    token ids can be offset past special tokens with `offset`."""

    codebook_size = 8192
    tokens_per_image = 256
    image_size = 256

    def __init__(self, encoder, offset=0):
        self.encoder, self.offset = encoder, offset

    def encode(self, images):
        if images.shape[-1] != 256 or images.shape[-2] != 256:
            images = torch.nn.functional.interpolate(images, size=(256, 256), mode="bilinear", align_corners=False)
        idx = self.encoder(images * 2 - 1)
        return idx.reshape(images.shape[0], 256).long() + self.offset


def procedural_sentence(gen, frames, size):
    """A short 'video': a coloured square moving with constant velocity over a flat background."""
    bg = torch.rand(3, generator=gen) * 0.5
    fg = 0.5 + torch.rand(3, generator=gen) * 0.5
    side = max(2, size // 4)
    x0, y0 = [int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen)]
    dx, dy = [int(v) for v in torch.randint(-2, 3, (2,), generator=gen)]
    imgs = []
    for f in range(frames):
        im = bg.view(3, 1, 1).expand(3, size, size).clone()
        x = (x0 + f * dx) % (size - side + 1)
        y = (y0 + f * dy) % (size - side + 1)
        im[:, y:y + side, x:x + side] = fg.view(3, 1, 1)
        imgs.append(im)
    return torch.stack(imgs)


def make_visual_sentences(sentences, images_per_sentence, tokens_per_image, vocab, seed=0, tokenizer=None):
    """Token ids [sentences, images_per_sentence * tokens_per_image] and the tokenizer used."""
    if tokenizer is None:
        tokenizer = PatchKMeansTokenizer(tokens_per_image, codebook_size=min(64, vocab), seed=seed)
    gen = torch.Generator().manual_seed(seed * 31 + 7)
    images = torch.cat([procedural_sentence(gen, images_per_sentence, tokenizer.image_size) for _ in range(sentences)])
    if isinstance(tokenizer, PatchKMeansTokenizer) and tokenizer.codebook is None:
        tokenizer.fit(images[: min(len(images), 1024)])
    codes = tokenizer.encode(images)
    if int(codes.max()) >= vocab:
        raise ValueError("tokenizer codes exceed the model vocabulary %d" % vocab)
    return codes.reshape(sentences, images_per_sentence * tokenizer.tokens_per_image), tokenizer


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mist_runtime.visual")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write built-in visual-sentence token shards")
    mk.add_argument("--out", required=True)
    mk.add_argument("--sentences", type=int, default=512)
    mk.add_argument("--images-per-sentence", type=int, default=4)
    mk.add_argument("--tokens-per-image", type=int, default=16)
    mk.add_argument("--vocab", type=int, default=256)
    mk.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from .data import write_shards
    toks, tok = make_visual_sentences(a.sentences, a.images_per_sentence, a.tokens_per_image, a.vocab, a.seed)
    idx = write_shards(a.out, toks, a.vocab, kind="visual", extra={"tokensPerImage": a.tokens_per_image,
                       "imagesPerSequence": a.images_per_sentence, "tokenizer": "patch-kmeans-%d" % tok.codebook_size})
    print("wrote %d tokens in %d shard(s) to %s" % (toks.numel(), len(idx["shards"]), a.out))


if __name__ == "__main__":
    main()
