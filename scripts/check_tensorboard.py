"""Reads a caplab TensorBoard event directory back with TensorBoard's own code and checks it.

Usage: python scripts/check_tensorboard.py RUN_DIR/tensorboard

Exits non-zero unless:
- the expected scalar tags are present with finite values;
- the text summaries `spec` (the resolved spec as a TOML code block; equal to RUN_DIR/spec.toml
  when that file exists) and `report` (report.md) are text-plugin tensors that TensorBoard's
  text plugin renders;
- the HParams plugin data (experiment, session start, session end) parses with TensorBoard's
  protos, names the expected hyperparameters (equal to the spec's values) and metrics (each a
  scalar tag of the run), and ends with STATUS_SUCCESS;
- TensorBoard's HParams plugin lists the run as one session group with a value for every metric;
- every epoch has the fixed validation sample images (`samples/val/<image>`, PNGs that decode to
  their stated size) and the `samples/val` text table with one caption per sample image.
"""
import math
import os
import sys
import tomllib

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.text import text_plugin
from tensorboard.util import tensor_util

EXPECTED = [
    "train/Loss",
    "train/Learning Rate",
    "epoch/train/Loss",
    "epoch/valid/Loss",
    "epoch/valid/BLEU-4",
    "epoch/valid/CIDEr",
]
TEXT_TAGS = ["spec", "report"]
EXPECTED_HPARAMS = {
    "train.lr": "number_value",
    "train.epochs": "number_value",
    "model.decoder.cell": "string_value",
    "model.encoder.arch": "string_value",
}
EXPECTED_METRICS = ["test/model/CIDEr", "test/model/BLEU-4", "epoch/valid/CIDEr"]


class CheckError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckError(msg)


def check_scalars(event_dir):
    acc = EventAccumulator(event_dir)
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    for tag in sorted(tags):
        values = [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)]
        print(f"{tag}: {len(values)} points, first {values[:3]}")
    missing = [t for t in EXPECTED if t not in tags]
    check(not missing, f"missing scalar tags: {missing}")
    bad = [t for t in tags if not all(math.isfinite(e.value) for e in acc.Scalars(t))]
    check(not bad, f"non-finite values in {bad}")
    return set(tags)


def flatten(prefix, value, out):
    """The spec's scalar keys as dotted paths, like caplab's HParams."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, (bool, int, float, str)):
        out[prefix] = value


def plugin_tags(acc, plugin):
    """`{tag: content}` of a plugin's summaries; empty when the file has none."""
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:
        return {}


def check_texts(acc, run_dir):
    tags = plugin_tags(acc, "text")
    missing = [t for t in TEXT_TAGS if t not in tags]
    check(not missing, f"missing text summaries: {missing} (text tags: {sorted(tags)})")
    texts = {}
    for tag in TEXT_TAGS:
        events = acc.Tensors(tag)
        check(len(events) == 1, f"text {tag}: {len(events)} events, expected 1")
        array = tensor_util.make_ndarray(events[0].tensor_proto)
        check(array.size == 1, f"text {tag}: shape {array.shape}, expected one string")
        text = array.reshape(-1)[0].decode("utf-8")
        html = text_plugin.text_array_to_html(array, enable_markdown=True)
        texts[tag] = (text, html)
        print(f"text {tag} (step {events[0].step}): {len(text)} chars, {len(html)} chars of HTML")
    spec_text, spec_html = texts["spec"]
    check(
        spec_text.startswith("```toml\n") and spec_text.endswith("\n```"),
        f"spec text is not a TOML code block: {spec_text[:80]!r}",
    )
    spec = tomllib.loads(spec_text[len("```toml\n") : -len("```")])
    check("train" in spec and "lr" in spec["train"], "spec text has no train.lr")
    check("<code" in spec_html, "the text plugin did not render the spec as code")
    spec_file = os.path.join(run_dir, "spec.toml")
    if os.path.isfile(spec_file):
        with open(spec_file, "rb") as f:
            check(tomllib.load(f) == spec, "spec text differs from spec.toml")
    report_text, report_html = texts["report"]
    check("## Test metrics" in report_text, "report text has no test metrics section")
    check("<table>" in report_html, "the text plugin did not render the report's tables")
    report_file = os.path.join(run_dir, "report.md")
    if os.path.isfile(report_file):
        with open(report_file, encoding="utf-8") as f:
            first = f.readline().rstrip("\n")
        check(report_text.startswith(first), "report text does not start like report.md")
    return spec


def check_samples(event_dir, epochs):
    """Per-epoch validation images and the table of their captions."""
    import io

    acc = EventAccumulator(event_dir, size_guidance={"images": 0})
    acc.Reload()
    tags = [t for t in acc.Tags().get("images", []) if t.startswith("samples/val/")]
    check(tags, f"no samples/val/* images (image tags: {acc.Tags().get('images')})")
    for tag in tags:
        events = acc.Images(tag)
        steps = sorted(e.step for e in events)
        check(steps == list(range(1, epochs + 1)), f"image {tag}: steps {steps}, expected 1..{epochs}")
        png = events[0].encoded_image_string
        check(png[:8] == b"\x89PNG\r\n\x1a\n", f"image {tag} is not a PNG")
        # PNG IHDR: width and height as big-endian u32 at bytes 16..24.
        w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        check((w, h) == (events[0].width, events[0].height), f"image {tag}: PNG {w}x{h}, summary {events[0].width}x{events[0].height}")
    pacc = plugin_event_accumulator.EventAccumulator(event_dir)
    pacc.Reload()
    texts = pacc.Tensors("samples/val")
    check(len(texts) == epochs, f"samples/val text: {len(texts)} events, expected {epochs}")
    for e in texts:
        table = tensor_util.make_ndarray(e.tensor_proto).reshape(-1)[0].decode("utf-8")
        rows = [l for l in table.splitlines()[2:] if l.startswith("| ")]
        check(len(rows) == len(tags), f"samples/val at step {e.step}: {len(rows)} rows for {len(tags)} images")
        html = text_plugin.text_array_to_html(tensor_util.make_ndarray(e.tensor_proto), enable_markdown=True)
        check("<table>" in html, "the text plugin did not render the samples table")
    print(f"samples: {len(tags)} images x {epochs} epochs, captions table every epoch")


def check_hparams(acc, spec, scalar_tags):
    contents = plugin_tags(acc, hparams_metadata.PLUGIN_NAME)
    tags = [
        hparams_metadata.EXPERIMENT_TAG,
        hparams_metadata.SESSION_START_INFO_TAG,
        hparams_metadata.SESSION_END_INFO_TAG,
    ]
    missing = [t for t in tags if t not in contents]
    check(not missing, f"missing HParams summaries: {missing}")
    # The parse_* helpers also check the plugin data version.
    experiment = hparams_metadata.parse_experiment_plugin_data(contents[tags[0]])
    start = hparams_metadata.parse_session_start_info_plugin_data(contents[tags[1]])
    end = hparams_metadata.parse_session_end_info_plugin_data(contents[tags[2]])

    names = [h.name for h in experiment.hparam_infos]
    check(names == sorted(start.hparams), "experiment hparams differ from the session's")
    for key, kind in EXPECTED_HPARAMS.items():
        check(key in start.hparams, f"hparam {key} missing: {sorted(start.hparams)}")
        got = start.hparams[key].WhichOneof("kind")
        check(got == kind, f"hparam {key} is a {got}, expected {kind}")
    flat = {}
    flatten("", spec, flat)
    for key, value in start.hparams.items():
        check(key in flat, f"hparam {key} is not a spec key")
        got = getattr(value, value.WhichOneof("kind"))
        check(got == flat[key], f"hparam {key} = {got!r}, spec has {flat[key]!r}")
    metrics = [m.name.tag for m in experiment.metric_infos]
    for tag in EXPECTED_METRICS:
        check(tag in metrics, f"metric {tag} missing: {metrics}")
    unwritten = [t for t in metrics if t not in scalar_tags]
    check(not unwritten, f"HParams metrics that are not scalar tags of the run: {unwritten}")
    check(end.status == api_pb2.STATUS_SUCCESS, f"session end status {end.status}")
    print(f"hparams: {len(names)} hyperparameters, metrics {metrics}, status {end.status}")
    return metrics


def check_hparams_dashboard(event_dir, metrics):
    """What TensorBoard's HParams dashboard lists: one session group, every metric valued."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context, list_session_groups

    logdir = os.path.dirname(os.path.abspath(event_dir))
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, logdir)
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=logdir))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=100,
        allowed_statuses=list(api_pb2.Status.values()),
        col_params=[api_pb2.ColParams(metric=api_pb2.MetricName(tag=t)) for t in metrics],
    )
    groups = list_session_groups.Handler(context.RequestContext(), backend, "", request).run()
    check(len(groups.session_groups) == 1, f"{len(groups.session_groups)} session groups, expected 1")
    group = groups.session_groups[0]
    valued = {m.name.tag: m.value for m in group.metric_values}
    check(set(valued) == set(metrics), f"dashboard metrics {sorted(valued)}, expected {metrics}")
    status = [s.status for s in group.sessions]
    check(status == [api_pb2.STATUS_SUCCESS], f"dashboard session status {status}")
    print(f"hparams dashboard: session {group.name!r}, {len(group.hparams)} hparams, "
          f"test/model/CIDEr = {valued.get('test/model/CIDEr')}")


def main() -> int:
    event_dir = sys.argv[1]
    run_dir = os.path.dirname(os.path.abspath(event_dir))
    try:
        scalar_tags = check_scalars(event_dir)
        acc = plugin_event_accumulator.EventAccumulator(event_dir)
        acc.Reload()
        spec = check_texts(acc, run_dir)
        metrics = check_hparams(acc, spec, scalar_tags)
        check_hparams_dashboard(event_dir, metrics)
        check_samples(event_dir, int(spec["train"]["epochs"]))
    except CheckError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
