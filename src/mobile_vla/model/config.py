"""Model configuration: backbone preset, LoRA, freezing, action head and grounding (plain data).

Every field is documented in ``docs/training.md``. The processor's image size and number of
image tokens are *derived* from the backbone preset (:func:`backbone_geometry`), so the two
cannot disagree.
"""

from __future__ import annotations

import dataclasses

from mobile_vla.errors import ConfigError
from mobile_vla.vocab.scene import PHASES

PRESETS = ("tiny", "kosmos-2", "kosmos-2-random")
ODOMETRY_AXES = ("xy", "x")  # head.odometry_axes
KOSMOS2_HUB_ID = "microsoft/kosmos-2-patch14-224"


@dataclasses.dataclass
class BackboneConfig:
    preset: str = "tiny"  # tiny | kosmos-2 (pretrained, needs the weights) | kosmos-2-random (full size)
    pretrained_path: str = KOSMOS2_HUB_ID  # kosmos-2 only: hub id or local directory
    # tiny preset sizes (ignored by the kosmos-2 presets, which use Kosmos2Config defaults)
    text_dim: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_dropout: float = 0.0
    vision_dim: int = 128
    vision_layers: int = 2
    vision_heads: int = 4
    image_size: int = 112
    patch_size: int = 14
    latent_query_num: int = 16


@dataclasses.dataclass
class LoRAConfig:
    enabled: bool = False
    rank: int = 32
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = dataclasses.field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
    )
    apply_to: str = "text"  # text | vision | both


@dataclasses.dataclass
class FreezeConfig:
    backbone: bool = False  # everything of Kosmos-2 (LoRA adapters stay trainable)
    vision: bool = False
    text_embeddings: bool = False
    projector: bool = False  # image_to_text_projection


@dataclasses.dataclass
class HeadConfig:
    type: str = "lstm"  # a registered action head: lstm (velocity regression) | classification (9 classes)
    num_action_tokens: int = 1
    window_size: int = 8  # W: frames per training window; streaming history length
    fwd_pred_next_n: int = 10  # N: chunk length
    lstm_hidden: int = 128
    lstm_layers: int = 1
    mlp_hidden: int = 128
    dropout: float = 0.0
    huber_delta: float = 0.1
    feature_norm: bool = True  # standardise per-frame features across the batch (running stats at inference)
    # batch: standardise with each training batch's statistics (BatchNorm); running: with the running
    # statistics in training too, so a batch of a few windows (a few episodes' correlated frames)
    # cannot train the head on a scale it never sees at inference.
    feature_norm_stats: str = "batch"
    # False: in training, one window position (drawn per batch) is encoded with gradients into the
    # backbone and the other W-1 frames without, so a window of W frames costs about one backward
    # pass instead of W — the head's LSTM still learns from the whole window.
    grad_every_frame: bool = True
    # The head also reads each frame's control step since the episode began (scaled by 1/40, the
    # simulator's episode limit): a cue to the phase of the route once the cup has left the view.
    step_input: bool = False
    # The head also reads the robot's displacement since the episode began (x forward, y left, in
    # the start pose's frame, scaled by 1/4 m): where the robot has gone once the view is empty.
    # Training reads it from the simulator's trajectory (or integrates a real file's recorded
    # commands); a session integrates the commands it predicts (each chunk's first action over
    # ``odometry_dt`` seconds), so it needs no odometry topic from the robot.
    odometry_input: bool = False
    # Which of the displacement's components the head reads: "xy", or "x" (forward progress only:
    # how far along the route the robot is, without the sideways offset that, once the robot has
    # drifted to one side, says which side the instruction meant and can stand in for the words).
    odometry_axes: str = "xy"
    odometry_dt: float = 0.4  # s between frames: the control period the session integrates over
    class_weights: list[float] | None = None  # classification: 9 weights (None = uniform)


@dataclasses.dataclass
class GroundingConfig:
    instruction_encoder: str = "text_states"  # text_states (backbone) | embeddings | sentence (MiniLM)
    film: bool = True  # FiLM of the action-token features and the LSTM input by the instruction
    direction_aux: bool = False  # auxiliary left/right/none classifier on the fused features
    direction_weight: float = 0.1
    counterfactual: bool = True  # prediction under the mirrored instruction matches its labels
    counterfactual_weight: float = 1.0
    # Phases (approach, beside, after) whose frames the counterfactual labels train; None: all.
    # Once the robot is beside or past the cluster the expert's label under the mirrored
    # instruction is its own (it drives on to the cup), so those pairs teach the policy to ignore
    # the instruction just where, with the cup out of view, the instruction is its only clue to
    # the lane it is in (docs/results.md).
    counterfactual_phases: list[str] | None = None
    contrastive: bool = False  # InfoNCE: fused features pulled to their own instruction
    contrastive_weight: float = 0.1
    contrastive_temperature: float = 0.1
    contrastive_dim: int = 64
    pool_image_latents: bool = True  # mean-pooled image latents beside the action feature (vision path)
    scene_aux: bool = False  # regress robot-frame cup/obstacle positions from the image (simulator labels)
    scene_aux_weight: float = 1.0
    scene_to_head: bool = False  # the scene head's geometry estimate is also an input of the action head


@dataclasses.dataclass
class ModelConfig:
    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    lora: LoRAConfig = dataclasses.field(default_factory=LoRAConfig)
    freeze: FreezeConfig = dataclasses.field(default_factory=FreezeConfig)
    head: HeadConfig = dataclasses.field(default_factory=HeadConfig)
    grounding: GroundingConfig = dataclasses.field(default_factory=GroundingConfig)

    def validate(self) -> None:
        b, h, g = self.backbone, self.head, self.grounding
        if b.preset not in PRESETS:
            raise ConfigError(f"model.backbone.preset: expected one of {PRESETS}, got {b.preset!r}")
        if g.instruction_encoder not in ("text_states", "embeddings", "sentence"):
            raise ConfigError(
                "model.grounding.instruction_encoder: expected text_states | embeddings | sentence, "
                f"got {g.instruction_encoder!r}"
            )
        if self.lora.apply_to not in ("text", "vision", "both"):
            raise ConfigError(f"model.lora.apply_to: expected text | vision | both, got {self.lora.apply_to!r}")
        for name in ("num_action_tokens", "window_size", "fwd_pred_next_n", "lstm_hidden", "lstm_layers"):
            if getattr(h, name) < 1:
                raise ConfigError(f"model.head.{name}: expected >= 1, got {getattr(h, name)}")
        if h.feature_norm_stats not in ("batch", "running"):
            raise ConfigError(f"model.head.feature_norm_stats: expected batch | running, got {h.feature_norm_stats!r}")
        if h.odometry_axes not in ODOMETRY_AXES:
            raise ConfigError(f"model.head.odometry_axes: expected one of {ODOMETRY_AXES}, got {h.odometry_axes!r}")
        if not h.odometry_dt > 0:
            raise ConfigError(f"model.head.odometry_dt: expected seconds > 0, got {h.odometry_dt}")
        if h.class_weights is not None and len(h.class_weights) != 9:
            raise ConfigError(f"model.head.class_weights: expected 9 values, got {len(h.class_weights)}")
        unknown = set(g.counterfactual_phases or ()) - set(PHASES)
        if unknown:
            raise ConfigError(f"model.grounding.counterfactual_phases: expected a list of {PHASES}, "
                              f"got {g.counterfactual_phases!r}")
        if g.scene_to_head and not (g.scene_aux and g.pool_image_latents):
            raise ConfigError("model.grounding.scene_to_head needs scene_aux: true and pool_image_latents: true")
        if b.preset == "tiny" and b.image_size % b.patch_size:
            raise ConfigError(
                f"model.backbone.image_size ({b.image_size}) must be a multiple of patch_size ({b.patch_size})"
            )


def backbone_geometry(config: BackboneConfig) -> tuple[int, int]:
    """``(image_size, num_image_tokens)`` the processor must use with this backbone."""
    if config.preset == "tiny":
        return config.image_size, config.latent_query_num
    return 224, 64  # Kosmos-2 patch14-224
