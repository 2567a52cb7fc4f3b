"""One test per validation rule, on real files in a temp dir."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.profiles import Severity, validate_file
from tests.profiles.conftest import VALID_MAIN, codes, find, run

if TYPE_CHECKING:
    from pathlib import Path


def edit(ws: Path, old: str, new: str, name: str = "main.toml") -> Path:
    path = ws / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_valid_workspace_has_no_finding(workspace: Path) -> None:
    report = run(workspace / "main.toml")
    assert report.findings == []
    assert report.ok
    assert report.kind == "main"
    assert report.config is not None
    assert report.config.model.type == "chroma"


def test_toml_syntax_error_is_located(workspace: Path) -> None:
    path = edit(workspace, "epochs = 10", "epochs = = 10")
    f = find(run(path), "toml-syntax")
    assert f.severity is Severity.ERROR
    assert f.line == 3
    assert f.file == path


def test_wrong_type(workspace: Path) -> None:
    f = find(run(edit(workspace, "epochs = 10", "epochs = '10'")), "type")
    assert f.key == "epochs"
    assert f.line == 3
    assert "'10'" in f.message


def test_unknown_key_did_you_mean(workspace: Path) -> None:
    path = edit(workspace, "epochs = 10", "epochs = 10\nsave_every_n_epoch = 3")
    f = find(run(path), "unknown-key")
    assert f.severity is Severity.WARNING
    assert f.line == 4
    assert "save_every_n_epochs" in (f.fix or "")


def test_model_key_of_another_type(workspace: Path) -> None:
    f = find(run(edit(workspace, "dtype = 'bfloat16'", "dtype = 'bfloat16'\nckpt_path = 'x'")), "unknown-key")
    assert f.key == "model.ckpt_path"
    assert "wan" in f.message


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("pseudo_huber_c = 0.5", "ignored-key"),
        ("image_eval_micro_batch_size_per_gpu = 4", "ignored-key"),
        ("regenerate_cache = true", "ignored-key"),
        ("eval_datasets = ['dataset.toml']", "eval-dataset-string"),
    ],
)
def test_ignored_or_crashing_top_keys(workspace: Path, line: str, code: str) -> None:
    f = find(run(edit(workspace, "epochs = 10", f"epochs = 10\n{line}")), code)
    assert f.line == 4


def test_hidream_nf4(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text(
        "output_dir='o'\ndataset='d'\nepochs=1\nsave_every_n_epochs=1\n[model]\ntype='hidream'\n"
        "diffusers_path='x'\nllama3_path='y'\ndtype='bfloat16'\ntransformer_dtype='nf4'\n"
        "[adapter]\ntype='lora'\nrank=4\n[optimizer]\ntype='adamw'\nlr=1e-4\n"
    )
    report = validate_file(path, check_paths=False)
    f = find(report, "hidream-nf4")
    assert f.line == 10
    assert [x.code for x in report.findings if x.key == "model.transformer_dtype"] == ["hidream-nf4"]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("save_every_n_epochs = 1\n", "", ""),
        ("type = 'chroma'\n", "", "model.type"),
        ("dtype = 'bfloat16'\n", "", "model.dtype"),
        ("output_dir = 'out'\n", "", "output_dir"),
        ("dataset = 'dataset.toml'\n", "", "dataset"),
        ("epochs = 10\n", "", "epochs"),
        ("diffusers_path = 'flux'\n", "", "model.diffusers_path"),
    ],
)
def test_missing_required(workspace: Path, old: str, new: str, key: str) -> None:
    report = run(edit(workspace, old, new))
    errors = [f for f in report.findings if f.severity is Severity.ERROR and f.key == key]
    assert errors, [f.format() for f in report.findings]
    assert all(f.line is not None for f in errors)


def test_hunyuan_needs_ckpt_or_files(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        VALID_MAIN.replace("type = 'chroma'", "type = 'hunyuan-video'").replace(
            "diffusers_path = 'flux'\ntransformer_path = 'chroma.safetensors'\n", "vae_path = 'v'\n"
        )
    )
    f = find(validate_file(path, check_paths=False), "missing-key")
    assert "ckpt_path" in f.message


def test_alpha_is_an_error(workspace: Path) -> None:
    f = find(run(edit(workspace, "rank = 16", "rank = 16\nalpha = 16")), "adapter-alpha")
    assert f.severity is Severity.ERROR
    assert f.key == "adapter.alpha"
    assert f.line == 16


def test_optimizer_kwarg_rejected_for_known_optimizer(workspace: Path) -> None:
    f = find(run(edit(workspace, "lr = 1e-4", "lr = 1e-4\nmomentum = 0.9")), "optimizer-kwarg")
    assert f.severity is Severity.ERROR
    assert f.key == "optimizer.momentum"


def test_pytorch_optimizer_accepts_anything(workspace: Path) -> None:
    path = edit(workspace, "type = 'adamw_optimi'", "type = 'Prodigy'\nd_coef = 2\nwhatever = true")
    assert "optimizer-kwarg" not in codes(run(path))


def test_pipeline_stages_vs_gpus(workspace: Path) -> None:
    path = edit(workspace, "epochs = 10", "epochs = 10\npipeline_stages = 2")
    assert "pipeline-stages" in codes(run(path, gpu_count=3))
    assert "pipeline-stages" not in codes(run(path, gpu_count=4))
    assert "pipeline-stages" not in codes(run(path))


def test_gradient_release_needs_one_data_parallel(workspace: Path) -> None:
    path = edit(workspace, "lr = 1e-4", "lr = 1e-4\ngradient_release = true")
    assert "gradient-release" in codes(run(path, gpu_count=2))
    assert "gradient-release" not in codes(run(path, gpu_count=1))


@pytest.mark.parametrize(
    ("extra", "replace", "message"),
    [
        ("blocks_to_swap = 10\npipeline_stages = 2", None, "pipeline_stages = 1"),
        ("blocks_to_swap = 10", ("[adapter]\ntype = 'lora'\nrank = 16\n", ""), "LoRA"),
        ("blocks_to_swap = 10", ("type = 'chroma'", "type = 'sd3'"), "does not implement"),
    ],
)
def test_block_swap_constraints(
    workspace: Path, extra: str, replace: tuple[str, str] | None, message: str
) -> None:
    path = edit(workspace, "epochs = 10", f"epochs = 10\n{extra}")
    if replace:
        path = edit(workspace, *replace)
    f = find(run(path, check_paths=False), "block-swap")
    assert message in f.message
    assert f.line == 4


def test_block_swap_max(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    path.write_text(
        "output_dir='o'\ndataset='d'\nepochs=1\nsave_every_n_epochs=1\nblocks_to_swap=47\n[model]\ntype='ltx2'\n"
        "diffusion_model='x'\ntext_encoder='t'\ndtype='bfloat16'\n[adapter]\ntype='lora'\nrank=4\n"
        "[optimizer]\ntype='adamw'\nlr=1e-4\n"
    )
    assert "at most 46" in find(validate_file(path, check_paths=False), "block-swap").message


@pytest.mark.parametrize("value", ["'bf16'", "'nf4'", "1"])
def test_bad_dtype(workspace: Path, value: str) -> None:
    report = run(edit(workspace, "dtype = 'bfloat16'", f"dtype = {value}"))
    assert [f.key for f in report.errors] == ["model.dtype"]


def test_partition_split_length(workspace: Path) -> None:
    path = edit(
        workspace,
        "epochs = 10",
        "epochs = 10\npipeline_stages = 3\npartition_method = 'manual'\npartition_split = [4]",
    )
    assert find(run(path), "partition-split").line == 6


@pytest.mark.parametrize("value", ["'yes'", "'true'", "1"])
def test_activation_checkpointing_values(workspace: Path, value: str) -> None:
    f = find(
        run(edit(workspace, "epochs = 10", f"epochs = 10\nactivation_checkpointing = {value}")),
        "activation-checkpointing",
    )
    assert f.line == 4
    assert [x.key for x in run(workspace / "main.toml").errors] == ["activation_checkpointing"]


@pytest.mark.parametrize("value", ["true", "false", "'unsloth'"])
def test_activation_checkpointing_accepts(workspace: Path, value: str) -> None:
    assert run(edit(workspace, "epochs = 10", f"epochs = 10\nactivation_checkpointing = {value}")).ok


def test_missing_model_file(workspace: Path) -> None:
    (workspace / "chroma.safetensors").unlink()
    f = find(run(workspace / "main.toml"), "path-missing")
    assert f.key == "model.transformer_path"
    assert f.line == 10
    assert run(workspace / "main.toml", check_paths=False).ok


def test_missing_dataset_dir_reported_in_dataset_file(workspace: Path) -> None:
    shutil.rmtree(workspace / "images")
    f = find(run(workspace / "main.toml"), "path-missing")
    assert f.file == workspace / "dataset.toml"
    assert f.key == "directory[0].path"
    assert f.line == 8


def test_missing_dataset_config(workspace: Path) -> None:
    (workspace / "dataset.toml").unlink()
    f = find(run(workspace / "main.toml"), "path-missing")
    assert f.key == "dataset"
    assert f.line == 2


def test_dataset_errors_come_with_their_file(workspace: Path) -> None:
    edit(workspace, "min_ar = 0.5\n", "", name="dataset.toml")
    f = find(run(workspace / "main.toml"), "dataset-rule")
    assert f.file == workspace / "dataset.toml"
    assert f.severity is Severity.ERROR


def test_relative_paths_resolve_against_base_dir(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("elsewhere")
    report = validate_file(workspace / "main.toml", base_dir=other)
    assert {f.key for f in report.errors} >= {"dataset", "model.transformer_path"}
    assert all(str(other) in f.message for f in report.errors)


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (2, False)])
def test_init_from_existing_needs_one_safetensors(workspace: Path, count: int, ok: bool) -> None:
    prev = workspace / "epoch5"
    prev.mkdir()
    for i in range(count):
        (prev / f"a{i}.safetensors").write_bytes(b"")
    report = run(edit(workspace, "rank = 16", "rank = 16\ninit_from_existing = 'epoch5'"))
    assert ("init-from-existing" not in codes(report)) is ok


def test_demo_profile_missing_paths_are_hints(workspace: Path) -> None:
    path = edit(
        workspace, "transformer_path = 'chroma.safetensors'", "transformer_path = 'gen/x.safetensors'"
    )
    path.write_text(path.read_text() + "\n[dpipe_tui]\nengine = 'builtin'\nprepare = 'demo'\n")
    shutil.rmtree(workspace / "images")
    report = run(path)
    assert report.ok
    assert {f.key for f in report.findings if f.code == "path-demo"} == {
        "model.transformer_path",
        "directory[0].path",
    }
    assert all(f.severity is Severity.HINT for f in report.findings if f.code == "path-demo")


def test_secret_warned_never_echoed(workspace: Path) -> None:
    secret = "0123456789abcdef0123456789abcdef01234567"
    path = edit(workspace, "[optimizer]", f"[monitoring]\nwandb_api_key = '{secret}'\n\n[optimizer]")
    report = run(path)
    f = find(report, "secret-in-profile")
    assert f.severity is Severity.WARNING
    assert f.key == "monitoring.wandb_api_key"
    assert all(secret not in x.format() and secret not in str(x.to_json()) for x in report.findings)


def test_secret_with_wrong_type_not_echoed(workspace: Path) -> None:
    path = edit(workspace, "[optimizer]", "[monitoring]\nwandb_api_key = 987654321987\n\n[optimizer]")
    report = run(path)
    assert report.errors
    assert all("987654321987" not in x.format() for x in report.findings)


def test_wandb_needs_names(workspace: Path) -> None:
    path = edit(
        workspace, "[optimizer]", "[monitoring]\nenable_wandb = true\nwandb_api_key = ''\n\n[optimizer]"
    )
    assert {f.key for f in run(path).findings if f.code == "wandb"} == {
        "monitoring.wandb_tracker_name",
        "monitoring.wandb_run_name",
    }


def test_dataset_file_detected_and_validated(workspace: Path) -> None:
    report = run(workspace / "dataset.toml")
    assert report.kind == "dataset"
    assert report.ok
    (workspace / "dataset.toml").write_text("resolutions = [512]\nfoo = 1\n[[directory]]\npath = 'nope'\n")
    report = run(workspace / "dataset.toml")
    assert report.kind == "dataset"
    assert {f.code for f in report.findings} >= {"unknown-key", "path-missing"}


def test_unreadable_file(tmp_path: Path) -> None:
    report = validate_file(tmp_path / "absent.toml")
    assert not report.ok
    assert report.findings[0].code == "io"
    assert report.findings[0].file == tmp_path / "absent.toml"


def test_builtin_engine_keys_are_known(workspace: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(VALID_MAIN + "\n[dpipe_tui]\nengine = 'builtin'\nseed = 7\n")
    report = run(main)
    assert report.ok
    assert "unknown-key" not in codes(report)


def test_random_init_does_not_need_the_transformer_file(workspace: Path) -> None:
    (workspace / "chroma.safetensors").unlink()
    main = workspace / "main.toml"
    main.write_text(VALID_MAIN + "\n[dpipe_tui]\nrandom_init = true\n")
    report = run(main)
    assert report.ok, [f.format() for f in report.findings]
    hint = find(report, "random-init")
    assert hint.severity is Severity.HINT
    assert hint.key == "model.transformer_path"
    # without random_init the same missing file is an error
    assert not run(edit(workspace, "random_init = true", "random_init = false")).ok


MINIMAX = (
    "output_dir='o'\ndataset='d'\nepochs=1\nsave_every_n_epochs=1\npipeline_stages=2\n[model]\n"
    "type='minimax_h3'\ndiffusion_model='/m/dm'\nvae='/m/v'\naudio_vae='/m/a'\n"
    "text_encoders=[{path='/m/te', type='minimax'}]\ndtype='bfloat16'\ncfg=4\n"
    "[adapter]\ntype='lora'\nrank=4\n[optimizer]\ntype='adamw'\nlr=1e-4\n"
)
NO_ADAPTER = ("[adapter]\ntype = 'lora'\nrank = 16\n", "")
WANDB = "[monitoring]\nenable_wandb = true\nwandb_tracker_name = 't'\nwandb_run_name = 'r'\n\n[optimizer]"
# (edits of VALID_MAIN, expected code, key, severity, text in the message, line)
RULE_CASES: dict[str, tuple[list[tuple[str, str]], str, str, Severity, str, int | None]] = {
    "fft-unsupported": (
        [("type = 'chroma'", "type = 'sd3'"), NO_ADAPTER],
        "fft-unsupported",
        "",
        Severity.ERROR,
        "cannot be fully fine-tuned",
        1,
    ),
    "lokr-flux": (
        [("type = 'chroma'", "type = 'flux'"), ("type = 'lora'", "type = 'lokr'")],
        "adapter-type",
        "adapter.type",
        Severity.ERROR,
        "'flux' can only save adapter type 'lora'",
        14,
    ),
    "lokr-sd3": (
        [("type = 'chroma'", "type = 'sd3'"), ("type = 'lora'", "type = 'lokr'")],
        "adapter-type",
        "adapter.type",
        Severity.ERROR,
        "'sd3'",
        14,
    ),
    "lokr-sdxl": (
        [("type = 'chroma'", "type = 'sdxl'"), ("type = 'lora'", "type = 'lokr'")],
        "adapter-type",
        "adapter.type",
        Severity.ERROR,
        "'sdxl'",
        14,
    ),
    "lokr-auraflow": (
        [("type = 'chroma'", "type = 'auraflow'"), ("type = 'lora'", "type = 'lokr'")],
        "adapter-type",
        "adapter.type",
        Severity.ERROR,
        "'auraflow'",
        14,
    ),
    "unknown-model-type": (
        [("type = 'chroma'", "type = 'chromaa'")],
        "unknown-model-type",
        "model.type",
        Severity.ERROR,
        "NotImplementedError",
        8,
    ),
    "missing-model-table": (
        [("[model]\n", "[unused]\n")],
        "missing-key",
        "",
        Severity.ERROR,
        "the [model] table is missing",
        1,
    ),
    "missing-optimizer-table": (
        [("[optimizer]\ntype = 'adamw_optimi'\nlr = 1e-4\n", "")],
        "missing-key",
        "",
        Severity.ERROR,
        "the [optimizer] table is missing",
        1,
    ),
    "wandb-api-key-key": (
        [("[optimizer]", WANDB)],
        "wandb",
        "monitoring",
        Severity.ERROR,
        "needs a wandb_api_key key",
        17,
    ),
    "beta2-half-life-without-betas": (
        [("lr = 1e-4", "lr = 1e-4\nbeta2_half_life = 100")],
        "missing-key",
        "optimizer.beta2_half_life",
        Severity.ERROR,
        "needs betas",
        20,
    ),
    "betas-length": (
        [("lr = 1e-4", "lr = 1e-4\nbetas = [0.9]")],
        "type",
        "optimizer.betas",
        Severity.ERROR,
        "two values",
        20,
    ),
    "automagic-lr": (
        [("type = 'adamw_optimi'\nlr = 1e-4", "type = 'automagic'\nlr = 1e-2")],
        "automagic-lr",
        "optimizer.lr",
        Severity.WARNING,
        "1e-6",
        19,
    ),
    "dataset-config-is-a-folder": (
        [("dataset = 'dataset.toml'", "dataset = 'flux'")],
        "path-kind",
        "dataset",
        Severity.ERROR,
        "is not a file",
        2,
    ),
    "missing-eval-dataset-config": (
        [("epochs = 10", "epochs = 10\neval_datasets = [{name = 'e', config = 'eval.toml'}]")],
        "path-missing",
        "eval_datasets[0].config",
        Severity.ERROR,
        "dataset config",
        4,
    ),
    "fuse-adapters-on-sdxl": (
        [
            ("type = 'chroma'", "type = 'sdxl'"),
            ("rank = 16", "rank = 16\nfuse_adapters = [{path = 'chroma.safetensors', weight = 1.0}]"),
        ],
        "ignored-key",
        "adapter.fuse_adapters",
        Severity.WARNING,
        "only used by flux and chroma",
        16,
    ),
    "partition-split-without-manual": (
        [("epochs = 10", "epochs = 10\npipeline_stages = 2\npartition_split = [4]")],
        "ignored-key",
        "partition_split",
        Severity.WARNING,
        "only used with partition_method = 'manual'",
        5,
    ),
}


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_rule(workspace: Path, case: str) -> None:
    edits, code, key, severity, text, line = RULE_CASES[case]
    path = workspace / "main.toml"
    for old, new in edits:
        path = edit(workspace, old, new)
    report = run(path)
    hits = [f for f in report.findings if f.code == code and f.key == key]
    assert hits, [f.format() for f in report.findings]
    assert hits[0].severity is severity
    assert text in hits[0].message
    assert hits[0].line == line
    assert hits[0].file == path


def test_lokr_is_fine_on_chroma(workspace: Path) -> None:
    assert "adapter-type" not in codes(run(edit(workspace, "type = 'lora'", "type = 'lokr'")))


def test_cfg_above_one_needs_one_pipeline_stage(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(MINIMAX)
    f = find(validate_file(path, check_paths=False), "pipeline-stages")
    assert (f.key, f.line, f.severity) == ("model.cfg", 13, Severity.ERROR)
    path.write_text(MINIMAX.replace("pipeline_stages=2", "pipeline_stages=1"))
    assert "pipeline-stages" not in codes(validate_file(path, check_paths=False))


def test_dataset_directory_that_is_a_file(workspace: Path) -> None:
    edit(workspace, "path = 'images'", "path = 'chroma.safetensors'", name="dataset.toml")
    f = find(run(workspace / "main.toml"), "path-kind")
    assert (f.file, f.key, f.line) == (workspace / "dataset.toml", "directory[0].path", 8)
    assert "is not a folder" in f.message


def test_adamw_rejects_decoupled_weight_decay_with_the_fix(workspace: Path) -> None:
    path = edit(workspace, "type = 'adamw_optimi'", "type = 'adamw'\ndecoupled_weight_decay = true")
    f = find(run(path), "optimizer-kwarg")
    assert f.severity is Severity.ERROR
    assert f.key == "optimizer.decoupled_weight_decay"
    assert "adamw_optimi" in (f.fix or "")
    assert "TypeError" in f.message


def test_genericoptim_compile_is_a_warning_that_names_the_top_level_key(workspace: Path) -> None:
    path = edit(workspace, "type = 'adamw_optimi'", "type = 'genericoptim'\ncompile = true")
    report = run(path)
    assert "optimizer-kwarg" not in codes(report)
    f = find(report, "optimizer-compile-overwritten")
    assert f.severity is Severity.WARNING
    assert "top-level compile (= false)" in f.message


def test_checkpoint_every_n_minutes_zero_is_valid(workspace: Path) -> None:
    path = edit(workspace, "checkpoint_every_n_minutes = 30", "checkpoint_every_n_minutes = 0")
    assert run(path).ok
    bad = edit(workspace, "checkpoint_every_n_minutes = 0", "checkpoint_every_n_minutes = -1")
    assert not run(bad).ok


def test_builtin_engine_names_every_key_it_does_not_honour(workspace: Path) -> None:
    edit(workspace, "epochs = 10", "epochs = 10\ncompile = true")
    edit(
        workspace,
        "path = 'images'",
        "path = 'images'\ncontrol_path = 'controls'\nmask_path = 'masks'",
        "dataset.toml",
    )
    edit(
        workspace,
        "resolutions = [512]",
        "resolutions = [512]\nsize_buckets = [[512, 512, 1]]",
        "dataset.toml",
    )
    for name in ("masks", "controls"):
        (workspace / name).mkdir()
    report = run(workspace / "main.toml")
    assert "builtin-ignores" not in codes(report)  # diffusion-pipe honours them all
    path = workspace / "main.toml"
    path.write_text(path.read_text() + "\n[dpipe_tui]\nengine = 'builtin'\n")
    report = run(path)
    gaps = {
        (f.file.name if f.file else "", f.key, f.line) for f in report.findings if f.code == "builtin-ignores"
    }
    # masks and size_buckets are honoured by the built-in engine: no word about them
    assert gaps == {("main.toml", "compile", 4), ("dataset.toml", "directory[0].control_path", 10)}
    control = next(f for f in report.findings if f.key == "directory[0].control_path")
    assert control.severity is Severity.WARNING
    assert "the built-in engine does not honour control_path: it trains no edit" in control.message
    assert "engine = 'diffusion-pipe'" in (control.fix or "")


def test_chroma_fuse_adapters_weight_is_ignored_by_diffusion_pipe(workspace: Path) -> None:
    text = (workspace / "main.toml").read_text()
    assert "[adapter]" in text
    path = edit(workspace, "[adapter]", "[adapter]\nfuse_adapters = [{path = 'x', weight = 0.5}]")
    f = find(run(path), "ignored-key")
    assert f.key == "adapter.fuse_adapters[0].weight"
    assert "weight 1" in f.message
