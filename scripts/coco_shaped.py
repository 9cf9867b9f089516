#!/usr/bin/env python3
"""Writes a COCO-shaped dataset for timing `caplab data check` (no download, stdlib only).

    scripts/coco_shaped.py OUT [--images 123287] [--broken 0]

OUT gets annotations/captions_train2014.json and captions_val2014.json (2/3 and 1/3 of the
images, 5 random captions each), one tiny real JPEG per image in train2014/ and val2014/, a
Karpathy dataset_coco.json (5000 val, 5000 test, 30504 restval, the rest train, as the
published split) and spec.toml reading all of it. --broken K deletes K images and truncates K.
"""
import argparse
import base64
import json
import os
import random

# A 32x32 JPEG written by `caplab data synth --size 32`.
JPEG = base64.b64decode("/9j/4AAQSkZJRgABAgAAAQABAAD/wAARCAAgACADAREAAhEBAxEB/9sAQwADAgICAgIDAgICAwMDAwQGBAQEBAQIBgYFBgkICgoJCAkJCgwPDAoLDgsJCQ0RDQ4PEBAREAoMEhMSEBMPEBAQ/9sAQwEDAwMEAwQIBAQIEAsJCxAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDWuI4x5gdQWkXOdxOM8jPT2456D1o5lJtvS1v1+e/khuLfwavbp/w2m+vfoZc6yshUu42BlUfd78f4fjjjFLST5rb/APB9H53Jk7pTh3v5+f59vxM24UJmNgfuheScE8ADHTqDyePr0q+bRW6W/r+rhDkbTl+H/A/Lf83lMI3Y5ztGWYIcnpjH8z06mnKK5kravvtv+u2u/UJJ2Vtf0+//AId/cehTB2G9WBwOevyvxnrgD/PaspWl7rXX8PXr02E046Lb5dfMz7qMxOCclsbSoOT/ALPbPv25B+lLRq1rddfT+v8AglPVWfX1836fl/li3UcRcAJ8wUhSU2bsjJHUY47+5NNVGtf6VtfPd7/kXZcl9nfVafr8+22mxmXccQBO1eTnarYCjjjAx0OPrjHtVqSdubXT1/Eiasnb+vOz+f8AlY1df1nVbTV57a1vGEUIVcgKeSoPcZGfc447Cvis5zjF4XGVKVCdoq1tF2V9bd3r1PyfibifNsvzSrhcLVtTSjZNR6xTerjvdvz1Xy2Z0jhkdTMFx0xxgdep568+vIr7XlntL+v6+7Trqj9aXNGN2r9+vXy6b/1Yy5xud9gyDgjec889h/wLA5pKPKtd/T/g3t5g2p2S2W9vlp8rf8MjLuSwforNjAQP7cfTGPqOO1EYPS70XW2n33/zXz2JW5rX1+e+v/AvsrHf3NuqpmSRmVyAvOML6/mf19KV22+RWt/Wn699UlcXxPVWad7/ANf191zJk2kmJscEZAJ5GCo/HnP/AAHoMc37Psvv779F+Nuo6l7J/l+Fu6+XUz5Y2kG7y9zcAkD7owAcZ/zxxUT5INK9n919fLz6W9UydYyvJP8Aq/4b+mi9cu4iXZsjfair8+5Rzx9QAcc4PPAqG2nbu76dv18wjJt2Xlbt1+//AIY//9k=")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=123287)
    ap.add_argument("--broken", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(0)
    words = ["w%d" % i for i in range(12000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    n_train = args.images * 2 // 3
    parts = {"train2014": range(0, n_train), "val2014": range(n_train, args.images)}
    os.makedirs(os.path.join(args.out, "annotations"), exist_ok=True)
    karpathy = []
    ann_id = 0
    for folder, ids in parts.items():
        os.makedirs(os.path.join(args.out, folder), exist_ok=True)
        images, anns = [], []
        for i in ids:
            cocoid = 1 + i
            name = "COCO_%s_%012d.jpg" % (folder, cocoid)
            with open(os.path.join(args.out, folder, name), "wb") as f:
                f.write(JPEG)
            images.append({"license": 1, "file_name": name, "height": 32, "width": 32, "id": cocoid})
            sents = []
            for _ in range(5):
                caption = " ".join(rng.choices(words, weights, k=rng.randint(8, 15))) + " ."
                anns.append({"image_id": cocoid, "id": ann_id, "caption": caption})
                sents.append({"raw": caption, "tokens": caption.split()[:-1], "imgid": i, "sentid": ann_id})
                ann_id += 1
            karpathy.append({"filepath": folder, "filename": name, "imgid": i, "cocoid": cocoid,
                             "sentids": [s["sentid"] for s in sents], "sentences": sents})
        with open(os.path.join(args.out, "annotations", "captions_%s.json" % folder), "w") as f:
            json.dump({"info": {}, "licenses": [], "type": "captions", "images": images, "annotations": anns}, f)
    rng.shuffle(karpathy)
    for k, entry in enumerate(karpathy):
        entry["split"] = "val" if k < 5000 else "test" if k < 10000 else "restval" if k < 40504 else "train"
    with open(os.path.join(args.out, "dataset_coco.json"), "w") as f:
        json.dump({"dataset": "coco", "images": karpathy}, f)
    for entry in karpathy[: args.broken]:
        os.remove(os.path.join(args.out, entry["filepath"], entry["filename"]))
    for entry in karpathy[args.broken : 2 * args.broken]:
        with open(os.path.join(args.out, entry["filepath"], entry["filename"]), "wb") as f:
            f.write(JPEG[: len(JPEG) // 2])
    with open(os.path.join(args.out, "spec.toml"), "w") as f:
        f.write('[experiment]\nname = "coco_shaped"\n\n[data]\nkind = "coco"\nroot = "%s"\n'
                'captions = ["annotations/captions_train2014.json", "annotations/captions_val2014.json"]\n'
                'splits = "dataset_coco.json"\n\n[preprocess.vocab]\nmin_freq = 5\n\n'
                '[model.encoder]\narch = "resnet_tiny"\n' % os.path.abspath(args.out))


if __name__ == "__main__":
    main()
