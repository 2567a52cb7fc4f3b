"""The ``[model]`` table: one pydantic class per diffusion-pipe model ``type`` (spec §2.2, §2.3).

Why one class per type, composed from key groups: each type reads its own keys, and a key another
type reads is silently ignored by this one (spec §2.7, issue #346), so the set of fields of each
class *is* the list of keys that type accepts; everything else is reported as an unknown key.
Required fields are the keys the model's loader indexes without a default. Alternatives
("``ckpt_path`` or the four ComfyUI files") are checked in :mod:`dpipe_tui.profiles.checks`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dpipe_tui.profiles.types import Bool, Dtype, Float, Int, Section, Str


class _Base(Section):
    dtype: Dtype
    """Base and autocast dtype of the model, e.g. 'bfloat16'. Required."""
    cache_text_embeddings: Bool = True
    """Cache text embeddings before training (false: run the text encoder on the fly)."""


class _Timestep(Section):
    timestep_sample_method: Literal["logit_normal", "uniform"] = "logit_normal"
    """How training timesteps are sampled: 'logit_normal' (default) or 'uniform'."""
    sigmoid_scale: Float = 1.0
    """Scale applied before the sigmoid for logit_normal sampling."""


class _Shift(Section):
    shift: Float | None = None
    """Constant timestep shift t*s/(1+(s-1)t). Takes precedence over flux_shift."""
    flux_shift: Bool = False
    """Resolution-dependent timestep shift (Flux / sd-scripts style)."""


class _TransformerDtype(Section):
    transformer_dtype: Dtype | None = None
    """Storage dtype of the transformer weights, e.g. 'float8' for fp8 LoRA training. Default: dtype."""


class TextEncoder(Section):
    """One ``text_encoders`` entry of a ComfyUI-based model."""

    path: Str | None = None
    """Path of the text encoder file."""
    paths: list[Str] | None = None
    """Several files forming one text encoder (hunyuan_video_15: qwen2.5-vl and byt5)."""
    type: Str
    """ComfyUI CLIPType name, e.g. 'lumina2', 'flux2'; an unknown name falls back to STABLE_DIFFUSION."""


class _Comfy(_Base, _Timestep, _Shift):
    diffusion_model: Str
    """Path of the ComfyUI diffusion model file. Required."""
    vae: Str
    """Path of the ComfyUI VAE file. Required."""
    text_encoders: list[TextEncoder]
    """Text encoders: [{path = '...', type = '<CLIPType>'}] or {paths = [...], type = ...}. Required."""
    merge_adapters: list[Str] = Field(default_factory=list)
    """LoRA files merged into the base weights before training."""
    diffusion_model_dtype: Dtype | None = None
    """Storage dtype of the diffusion model weights, e.g. 'float8'."""


class SdxlModel(_Base):
    type: Literal["sdxl"]
    """Model type 'sdxl': Stable Diffusion XL (one .safetensors checkpoint).
    Required; it decides which other [model] keys are read."""
    checkpoint_path: Str
    """Single-file SDXL checkpoint. Required."""
    v_pred: Bool = False
    """The checkpoint is v-prediction."""
    min_snr_gamma: Float | None = None
    """Min-SNR loss weighting gamma."""
    debiased_estimation_loss: Bool = False
    """Use the debiased estimation loss weighting."""
    unet_lr: Float | None = None
    """Learning rate of the UNet (default: optimizer lr)."""
    text_encoder_1_lr: Float | None = None
    """Learning rate of text encoder 1 (default: optimizer lr)."""
    text_encoder_2_lr: Float | None = None
    """Learning rate of text encoder 2 (default: optimizer lr)."""


class FluxModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["flux"]
    """Model type 'flux': FLUX.1 (Diffusers folder, optional transformer file; Kontext via control images).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers folder of Flux (dev or schnell). Required."""
    transformer_path: Str | None = None
    """BFL single-file transformer that replaces the Diffusers one."""
    bypass_guidance_embedding: Bool = False
    """Bypass the guidance embedding (FLEX.1)."""
    guidance: Float = 1.0
    """Guidance-embedding value."""


class LtxVideoModel(_Base, _Timestep, _TransformerDtype):
    type: Literal["ltx-video"]
    """Model type 'ltx-video': LTX-Video (Diffusers folder).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers folder of LTX-Video (used for the text encoder). Required."""
    single_file_path: Str
    """Single-file LTX-Video checkpoint; its stem is the cache name. Required."""
    first_frame_conditioning_p: Float = 0.0
    """Probability of conditioning on the first frame (i2v training)."""


class HunyuanVideoModel(_Base, _Timestep, _TransformerDtype):
    type: Literal["hunyuan-video"]
    """Model type 'hunyuan-video': HunyuanVideo (ckpt_path, or the four separate files).
    Required; it decides which other [model] keys are read."""
    ckpt_path: Str | None = None
    """Official HunyuanVideo ckpts folder. Alternative to the four ComfyUI files."""
    transformer_path: Str | None = None
    """ComfyUI transformer file."""
    vae_path: Str | None = None
    """ComfyUI VAE file."""
    llm_path: Str | None = None
    """LLaVA-Llama-3 text encoder folder."""
    clip_path: Str | None = None
    """CLIP ViT-L/14 folder."""
    shift: Float | None = None
    """Constant timestep shift."""
    guidance: Float = 1.0
    """Guidance-embedding value."""


class CosmosModel(_Base):
    type: Literal["cosmos"]
    """Model type 'cosmos': NVIDIA Cosmos (original checkpoint files).
    Required; it decides which other [model] keys are read."""
    transformer_path: Str
    """Cosmos transformer file. Required."""
    vae_path: Str
    """Cosmos VAE file. Required."""
    text_encoder_path: Str
    """T5 text encoder file. Required."""


class Lumina2Model(_Base, _Timestep):
    type: Literal["lumina_2"]
    """Model type 'lumina_2': Lumina Image 2.0.
    Required; it decides which other [model] keys are read."""
    transformer_path: Str
    """Lumina 2 transformer file. Required."""
    llm_path: Str
    """Gemma2-2B text encoder file. Required."""
    vae_path: Str
    """Flux VAE file. Required."""
    lumina_shift: Bool = False
    """Use Lumina's resolution-dependent shift."""
    shift: Float | None = None
    """Constant timestep shift."""


class WanModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["wan"]
    """Model type 'wan': Wan 2.1 / 2.2 (variant autodetected from the checkpoint).
    Required; it decides which other [model] keys are read."""
    ckpt_path: Str
    """Official Wan checkpoint folder (config.json, VAE, tokenizer). Required."""
    transformer_path: Str | None = None
    """Transformer folder or .safetensors replacing the one in ckpt_path."""
    llm_path: Str | None = None
    """UMT5 text encoder file."""
    text_encoder_fp8: Bool = False
    """Load the text encoder in fp8."""
    min_t: Float = 0.0
    """Lower bound of sampled timesteps (0..1)."""
    max_t: Float = 1.0
    """Upper bound of sampled timesteps (0..1)."""


class ChromaModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["chroma"]
    """Model type 'chroma': Chroma (Flux architecture: a Diffusers FLUX folder plus the Chroma file).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers Flux folder (dev or schnell) for the VAE and T5. Required."""
    transformer_path: Str
    """Chroma transformer .safetensors (original layout). Required."""


class HiDreamModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["hidream"]
    """Model type 'hidream': HiDream-I1 (Diffusers folder plus Llama 3).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers HiDream folder. Required."""
    llama3_path: Str
    """Llama 3 text encoder folder. Required."""
    llama3_4bit: Bool = False
    """Load Llama 3 in 4 bit."""
    max_llama3_sequence_length: Int = 128
    """Maximum Llama 3 token count."""


class Sd3Model(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["sd3"]
    """Model type 'sd3': Stable Diffusion 3 / 3.5 (Diffusers folder).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers SD3 folder. Required."""


class _CosmosPredict2(_Base, _Timestep, _Shift, _TransformerDtype):
    transformer_path: Str
    """Transformer file (prefixes net. / model.diffusion_model. are stripped). Required."""
    vae_path: Str
    """VAE file. Required."""
    t5_path: Str | None = None
    """T5 text encoder (cosmos_predict2). One of t5_path / llm_path is required."""
    llm_path: Str | None = None
    """LLM text encoder: an HF folder, or a Qwen3-0.6B file (anima)."""
    llm_adapter_path: Str | None = None
    """LLM adapter weights (anima)."""
    text_encoder_fp8: Bool = False
    """Load the text encoder in fp8."""
    text_encoder_nf4: Bool = False
    """Load the text encoder in nf4."""
    multiscale_loss_weight: Float | None = None
    """Weight of the multiscale loss term."""
    self_attn_lr: Float | None = None
    """Learning rate of self-attention weights (0 freezes them)."""
    cross_attn_lr: Float | None = None
    """Learning rate of cross-attention weights (0 freezes them)."""
    mlp_lr: Float | None = None
    """Learning rate of MLP weights (0 freezes them)."""
    mod_lr: Float | None = None
    """Learning rate of modulation weights (0 freezes them)."""
    llm_adapter_lr: Float | None = None
    """Learning rate of the LLM adapter (0 freezes it)."""


class CosmosPredict2Model(_CosmosPredict2):
    type: Literal["cosmos_predict2"]
    """Model type 'cosmos_predict2': Cosmos-Predict2.
    Required; it decides which other [model] keys are read."""


class AnimaModel(_CosmosPredict2):
    type: Literal["anima"]
    """Model type 'anima': Anima (Cosmos-Predict2 architecture).
    Required; it decides which other [model] keys are read."""


class Omnigen2Model(_Base, _Timestep, _Shift):
    type: Literal["omnigen2"]
    """Model type 'omnigen2': OmniGen2 (Diffusers folder).
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str
    """Diffusers OmniGen2 folder. Required."""


class QwenImageModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["qwen_image"]
    """Model type 'qwen_image': Qwen-Image / Qwen-Image-Edit.
    Required; it decides which other [model] keys are read."""
    diffusers_path: Str | None = None
    """Diffusers Qwen-Image folder; or give transformer_path + text_encoder_path + vae_path."""
    transformer_path: Str | None = None
    """ComfyUI transformer file (beats diffusers_path)."""
    text_encoder_path: Str | None = None
    """ComfyUI text encoder file (beats diffusers_path)."""
    vae_path: Str | None = None
    """Diffusers VAE file (beats diffusers_path)."""


class HunyuanImageModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["hunyuan_image"]
    """Model type 'hunyuan_image': HunyuanImage (ComfyUI files).
    Required; it decides which other [model] keys are read."""
    transformer_path: Str
    """ComfyUI transformer file. Required."""
    vae_path: Str
    """ComfyUI VAE file. Required."""
    text_encoder_path: Str
    """ComfyUI text encoder file. Required."""
    byt5_path: Str
    """ComfyUI ByT5 file. Required."""


class AuraFlowModel(_Base, _Timestep, _Shift, _TransformerDtype):
    type: Literal["auraflow"]
    """Model type 'auraflow': AuraFlow.
    Required; it decides which other [model] keys are read."""
    transformer_path: Str
    """Transformer file. Required."""
    text_encoder_path: Str
    """Text encoder file. Required."""
    vae_path: Str
    """VAE file. Required."""
    max_sequence_length: Int
    """Maximum text token count. Required."""


class ZImageModel(_Comfy):
    type: Literal["z_image"]
    """Model type 'z_image': Z-Image (ComfyUI files).
    Required; it decides which other [model] keys are read."""


class HunyuanVideo15Model(_Comfy):
    type: Literal["hunyuan_video_15"]
    """Model type 'hunyuan_video_15': HunyuanVideo 1.5 (ComfyUI files).
    Required; it decides which other [model] keys are read."""


class Flux2Model(_Comfy):
    type: Literal["flux2"]
    """Model type 'flux2': FLUX.2 (ComfyUI files).
    Required; it decides which other [model] keys are read."""


class ErnieImageModel(_Comfy):
    type: Literal["ernie_image"]
    """Model type 'ernie_image': ErnieImagePipeline (ComfyUI files, Flux2 VAE).
    Required; it decides which other [model] keys are read."""


class Ideogram4Model(_Comfy):
    type: Literal["ideogram4"]
    """Model type 'ideogram4': Ideogram4Pipeline (ComfyUI files).
    Required; it decides which other [model] keys are read."""


class Krea2Model(_Comfy):
    type: Literal["krea2"]
    """Model type 'krea2': Krea2Pipeline (ComfyUI files).
    Required; it decides which other [model] keys are read."""


class MinimaxH3Model(_Comfy):
    type: Literal["minimax_h3"]
    """Model type 'minimax_h3': MinimaxH3Pipeline (ComfyUI files: image, video and audio).
    Required; it decides which other [model] keys are read."""
    audio_vae: Str
    """Audio VAE file. Required."""
    cfg: Float | None = None
    """CFG-augmented training scale (> 1 needs pipeline_stages = 1)."""
    image_shift: Float | None = None
    """Timestep shift used for images."""


class Ltx2Model(_Base, _Timestep, _Shift):
    type: Literal["ltx2"]
    """Model type 'ltx2': LTX-2 (one ComfyUI file plus a text encoder).
    Required; it decides which other [model] keys are read."""
    diffusion_model: Str
    """ComfyUI LTX2 file (the VAE is read from it too). Required."""
    text_encoder: Str
    """Text encoder path (one string, not a list). Required."""
    merge_adapters: list[Str] = Field(default_factory=list)
    """LoRA files merged into the base weights before training."""
    diffusion_model_dtype: Dtype | None = None
    """Storage dtype of the diffusion model weights, e.g. 'float8'."""


ModelSection = Annotated[
    SdxlModel
    | FluxModel
    | LtxVideoModel
    | HunyuanVideoModel
    | CosmosModel
    | Lumina2Model
    | WanModel
    | ChromaModel
    | HiDreamModel
    | Sd3Model
    | CosmosPredict2Model
    | AnimaModel
    | Omnigen2Model
    | QwenImageModel
    | HunyuanImageModel
    | AuraFlowModel
    | ZImageModel
    | HunyuanVideo15Model
    | Flux2Model
    | ErnieImageModel
    | Ltx2Model
    | Ideogram4Model
    | Krea2Model
    | MinimaxH3Model,
    Field(discriminator="type"),
]

MODEL_CLASSES: dict[str, type[Section]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]  # Literal["x"].__args__
    for cls in (
        SdxlModel,
        FluxModel,
        LtxVideoModel,
        HunyuanVideoModel,
        CosmosModel,
        Lumina2Model,
        WanModel,
        ChromaModel,
        HiDreamModel,
        Sd3Model,
        CosmosPredict2Model,
        AnimaModel,
        Omnigen2Model,
        QwenImageModel,
        HunyuanImageModel,
        AuraFlowModel,
        ZImageModel,
        HunyuanVideo15Model,
        Flux2Model,
        ErnieImageModel,
        Ltx2Model,
        Ideogram4Model,
        Krea2Model,
        MinimaxH3Model,
    )
}
"""Model type string -> its class (spec §2.3: 24 strings)."""

BLOCK_SWAP_MAX: dict[str, int | None] = {
    "flux": None,
    "hunyuan-video": None,
    "wan": None,
    "chroma": None,
    "hidream": None,
    "cosmos_predict2": None,
    "anima": None,
    "qwen_image": None,
    "hunyuan_image": None,
    "auraflow": None,
    "z_image": None,
    "hunyuan_video_15": None,
    "flux2": None,
    "ernie_image": None,
    "ideogram4": None,
    "krea2": None,
    "ltx2": 46,
    "minimax_h3": 48,
}
"""Types that implement block swapping, with the known maximum where it is fixed (spec §2.1, §2.3)."""

NO_FULL_FINETUNE = frozenset(
    {"ltx-video", "hunyuan-video", "cosmos", "hidream", "sd3", "omnigen2", "auraflow"}
)
"""Types that cannot be fully fine-tuned (an [adapter] table is required)."""

LORA_ONLY_SAVE = frozenset({"flux", "sd3", "auraflow", "sdxl"})
"""Types whose saver supports only adapter type 'lora' (not lokr)."""
