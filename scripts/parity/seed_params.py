"""Parameter counts of the four seed notebooks' PyTorch models, built as their code builds them.

Each encoder is torchvision's with `weights=None` (counts do not depend on the weights) and the
notebook's replaced head; each decoder is the notebook's nn.Embedding / nn.LSTM / nn.Linear stack.
Prints JSON (total, encoder, decoder, and the parts caplab does not build) for a vocabulary of
VOCAB words; `tests/seeds.rs` compares caplab's models against the committed output:

    python3 scripts/parity/seed_params.py > scripts/parity/seed_params.json

Needs torch and torchvision (CPU wheels are enough).
"""

import json

import torch
import torch.nn as nn
import torchvision

VOCAB = 5000


def count(module):
    return sum(p.numel() for p in module.parameters())


class EncoderInceptionFc(nn.Module):
    """Seeds 000/003: Inception v3 whose `fc` becomes Linear(2048→E), then ReLU and Dropout(0.5).

    The notebooks ask for pretrained weights, and torchvision builds those with the auxiliary
    classifier (`aux_logits=True`), so the module holds `AuxLogits` too.
    """

    def __init__(self, embed):
        super().__init__()
        self.inception = torchvision.models.inception_v3(
            weights=None, aux_logits=True, init_weights=False
        )
        self.inception.fc = nn.Linear(self.inception.fc.in_features, embed)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)


class DecoderFirstStep(nn.Module):
    """Seeds 000/003: Embedding(V, E) + Dropout, LSTM(E, H, layers), Linear(H → V)."""

    def __init__(self, embed, hidden, vocab, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers)
        self.linear = nn.Linear(hidden, vocab)
        self.dropout = nn.Dropout(0.5)


class EncoderVgg16Fc7(nn.Module):
    """Seed 001: VGG16 with the classifier's last layer removed (fc7 output, 4096-d)."""

    def __init__(self):
        super().__init__()
        vgg = torchvision.models.vgg16(weights=None)
        vgg.classifier = nn.Sequential(*list(vgg.classifier.children())[:-1])
        self.vgg = vgg


class DecoderInitState(nn.Module):
    """Seed 001: h0 = tanh(init_h(f)), c0 = tanh(init_c(f)); Embedding(padding_idx=0); LSTM; fc."""

    def __init__(self, feature, embed, hidden, vocab):
        super().__init__()
        self.init_h = nn.Linear(feature, hidden)
        self.init_c = nn.Linear(feature, hidden)
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, vocab)


class EncoderResnet50Fc(nn.Module):
    """Seed 002: ResNet-50 whose `fc` becomes Linear(2048→512), then ReLU and Dropout(0.5)."""

    def __init__(self, embed):
        super().__init__()
        self.resnet = torchvision.models.resnet50(weights=None)
        self.resnet.fc = nn.Linear(self.resnet.fc.in_features, embed)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)


class DecoderThreeLayer(nn.Module):
    """Seed 002: Embedding(V, 512) + Dropout, LSTM(512, 256, 3), Linear(256→1024) → Linear(1024→V)."""

    def __init__(self, embed, hidden, vocab, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.dropout = nn.Dropout(0.5)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.linear1 = nn.Linear(hidden, 1024)
        self.linear2 = nn.Linear(1024, vocab)


def running_stats(module, skip=()):
    """Elements of BatchNorm's running mean and variance (buffers, not parameters, in PyTorch;
    burn's `num_params` counts them, as `RunningState`), outside submodules named in `skip`."""
    return sum(
        b.numel()
        for name, b in module.named_buffers()
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var")
        and not any(part in name.split(".") for part in skip)
    )


def entry(encoder, decoder, not_built):
    """Counts; `not_built` names encoder submodules caplab leaves out, with their counts."""
    enc, dec = count(encoder), count(decoder)
    return {
        "total": enc + dec,
        "encoder": enc,
        "decoder": dec,
        "not_built_by_caplab": not_built,
        # of the part caplab builds (AuxLogits left out)
        "encoder_bn_running_stats": running_stats(encoder, skip=("AuxLogits",)),
    }


def main():
    torch.manual_seed(0)
    inception = EncoderInceptionFc(256)
    # caplab builds the CNN trunk as `model.encoder` and the replaced `fc` as the decoder's
    # `project`; it leaves out the auxiliary classifier, which the captioning path never reads.
    aux = {"encoder.inception.AuxLogits": count(inception.inception.AuxLogits)}
    fc_000 = count(inception.inception.fc)
    seeds = {
        "000-inception-lstm": entry(
            inception, DecoderFirstStep(256, 256, VOCAB, 1), aux
        ),
        "001-vgg16-init-state": entry(
            EncoderVgg16Fc7(), DecoderInitState(4096, 256, 256, VOCAB), {}
        ),
        "002-resnet50-3layer": entry(
            EncoderResnet50Fc(512), DecoderThreeLayer(512, 256, VOCAB, 3), {}
        ),
        # 003 is 000's model fed 224 px images: the same module, the same count.
        "003-inception-224": entry(
            EncoderInceptionFc(256), DecoderFirstStep(256, 256, VOCAB, 1), aux
        ),
    }
    seeds["000-inception-lstm"]["encoder_fc"] = fc_000
    seeds["003-inception-224"]["encoder_fc"] = fc_000
    seeds["001-vgg16-init-state"]["encoder_fc"] = 0  # no replaced fc: init_h/init_c are decoder
    resnet = EncoderResnet50Fc(512)
    seeds["002-resnet50-3layer"]["encoder_fc"] = count(resnet.resnet.fc)
    out = {
        "vocab_size": VOCAB,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seeds": seeds,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
