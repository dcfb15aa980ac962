"""Keys of a training item / batch, as produced by the dataset and consumed by model and evaluation.

Shapes per item (``W`` window, ``N`` chunk, ``D`` action dims, ``L`` tokens, ``S`` image size)::

    PIXEL_VALUES      float32 (W, 3, S, S)
    FRAME_MASK        bool    (W,)
    STEP_INDEX        long    (W,)  each frame's control step since the episode began
    ODOMETRY          float32 (W, 2)  the robot's displacement (m) since the episode began, start frame
    TOKEN_KEYS        long    (L,) each; CF_PREFIX + key for the mirrored instruction
    ACTIONS           float32 (W, N, D) normalised;  ACTION_MASK bool (W, N)
    CF_ACTIONS        float32 (W, N, D) normalised;  CF_ACTION_MASK bool (W, N)
    DIRECTION         long    ()  DIRECTION_IDS[side] or DIRECTION_NONE
    CLASS_LABELS      long    (W, N)  discrete heads only
    SCENE             float32 (W, len(SCENE_LABELS));  SCENE_MASK bool (W,)
    INSTRUCTION, EPISODE_ID, SOURCE   str  (SOURCE: the data source's name)
"""

from __future__ import annotations

PIXEL_VALUES = "pixel_values"
FRAME_MASK = "frame_mask"
STEP_INDEX = "step_index"
ODOMETRY = "odometry"
TOKEN_KEYS = ("input_ids", "attention_mask", "image_embeds_position_mask", "action_token_mask")
CF_PREFIX = "cf_"  # the same tokens/targets under the mirrored instruction
ACTIONS = "actions"
ACTION_MASK = "action_mask"
CF_ACTIONS = CF_PREFIX + ACTIONS
CF_ACTION_MASK = CF_PREFIX + ACTION_MASK
DIRECTION = "direction"
CLASS_LABELS = "class_labels"
SCENE = "scene"
SCENE_MASK = "scene_mask"
INSTRUCTION = "instruction"
EPISODE_ID = "episode_id"
SOURCE = "source"

DIRECTION_IDS = {"left": 0, "right": 1}
DIRECTION_NONE = 2  # the instruction names no side
