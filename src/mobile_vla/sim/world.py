"""The MuJoCo world: one fixed model per process, re-dressed for each scene.

Creating an EGL renderer costs ≈0.3 s, far more than an episode, so the model is compiled
once with slots for everything a scene varies (three boxes, four distractors with one geom
per shape each, cup, floor materials, light, camera) and :meth:`World.reset` writes a :class:`SceneSpec` into those slots.

The robot is an omni-wheel base: slide joints on x and y and a hinge for yaw, each driven by
a velocity actuator (``implicitfast`` keeps the stiff velocity loop stable). Actions are
robot-frame ``[linear_x, linear_y, angular_z]`` held for one control period; collisions are
MuJoCo contacts between the robot's geom and a box or a distractor.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from mobile_vla.sim.scene import DISTRACTOR_SHAPES, FLOOR_TEXTURES, Distractor, SceneSpec
from mobile_vla.vocab.actions import TELEOP_SPEED

MAX_LINEAR = TELEOP_SPEED  # m/s per axis: the real robot's teleop speed
MAX_ANGULAR = 1.0  # rad/s
ROBOT_RADIUS = 0.2  # m
CAMERA_FORWARD = 0.18  # m, camera ahead of the robot's centre
# The robot's camera is 1280×720 and the processor squashes its frames to a square; the simulated
# camera renders the same 16:9 field of view into a square image, so both look alike to the model
# (horizontal field ≈ 90°: the cup stays in view while the robot passes the obstacle).
CAMERA_SENSOR = (1.6, 0.9)  # sensor width, height (arbitrary units; only the ratio matters)
_MAX_BOXES = 3
_MAX_DISTRACTORS = 4
_MAX_PROPS = 2  # extra visual objects a task's scenes may add (``scene.props``), e.g. baskets
_HIDDEN = (50.0, 50.0, -5.0)  # where an unused box or distractor slot waits
# Floor texture name -> (MuJoCo builtin, repeats over the 24 m floor).
_FLOOR_KINDS = {"checker": ("checker", 24), "flat": ("flat", 24), "gradient": ("gradient", 24),
                "checker_fine": ("checker", 60), "checker_coarse": ("checker", 10)}
_GEOM_TYPE = {"box": "box", "sphere": "sphere", "cylinder": "cylinder"}


def _mjcf(image_size: int, physics_dt: float) -> str:
    textures = "\n".join(
        f'<texture name="floor{i}" type="2d" builtin="{_FLOOR_KINDS[name][0]}" width="64" height="64" '
        f'rgb1="1 1 1" rgb2="0.78 0.78 0.78" mark="none"/>'
        f'<material name="floor{i}" texture="floor{i}" texrepeat="{_FLOOR_KINDS[name][1]} '
        f'{_FLOOR_KINDS[name][1]}" reflectance="0"/>'
        for i, name in enumerate(FLOOR_TEXTURES)
    )
    boxes = "\n".join(
        f'<body name="box{i}" pos="{_HIDDEN[0]} {_HIDDEN[1]} {_HIDDEN[2]}">'
        f'<geom name="box{i}" type="box" size="0.1 0.1 0.1" contype="2" conaffinity="2" rgba="1 0 0 1"/></body>'
        for i in range(_MAX_BOXES)
    )
    # One body per geom, as for the boxes. Compiled collidable: the body-level collision filter
    # (body_contype) is fixed at compile time; reset() switches each geom's own flags.
    distractors = "\n".join(
        f'<body name="distractor{i}_{shape}" pos="{_HIDDEN[0]} {_HIDDEN[1]} {_HIDDEN[2]}">'
        f'<geom name="distractor{i}_{shape}" type="{_GEOM_TYPE[shape]}" size="0.1 0.1 0.1" '
        f'contype="2" conaffinity="2" rgba="1 1 1 0"/></body>'
        for i in range(_MAX_DISTRACTORS) for shape in DISTRACTOR_SHAPES
    )
    props = "\n".join(
        f'<geom name="prop{i}" type="cylinder" size="0.1 0.1" pos="{_HIDDEN[0]} {_HIDDEN[1]} {_HIDDEN[2]}" '
        f'contype="0" conaffinity="0" rgba="0.5 0.5 0.5 0"/>'
        for i in range(_MAX_PROPS)
    )
    return f"""
<mujoco model="mobile_vla_navigate">
  <option timestep="{physics_dt}" integrator="implicitfast"/>
  <!-- znear/zfar are multiples of the extent; fixing it keeps the near floor from being clipped. -->
  <statistic extent="1" center="2 0 0"/>
  <visual>
    <global offwidth="{image_size}" offheight="{image_size}"/>
    <quality shadowsize="0"/>
    <headlight ambient="0.3 0.3 0.3" diffuse="0.15 0.15 0.15" specular="0 0 0"/>
    <map znear="0.03" zfar="30"/>
  </visual>
  <asset>{textures}</asset>
  <worldbody>
    <light name="sun" directional="true" castshadow="false" pos="0 0 4" dir="0 0 -1"
           diffuse="0.7 0.7 0.7" specular="0 0 0"/>
    <geom name="floor" type="plane" size="12 12 0.1" material="floor0" contype="1" conaffinity="1"/>
    {boxes}
    {distractors}
    {props}
    <geom name="cup" type="cylinder" size="0.1 0.2" pos="3 0 0.2" contype="0" conaffinity="0"
          rgba="0 1 0 1"/>
    <body name="robot" pos="0 0 0">
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <joint name="yaw" type="hinge" axis="0 0 1"/>
      <geom name="chassis" type="cylinder" size="{ROBOT_RADIUS} 0.1" pos="0 0 0.12" mass="20"
            contype="2" conaffinity="2" rgba="0.15 0.15 0.15 1"/>
      <camera name="ego" pos="{CAMERA_FORWARD} 0 0.48" xyaxes="0 -1 0 0 0 1"
              sensorsize="{CAMERA_SENSOR[0]} {CAMERA_SENSOR[1]}" resolution="{image_size} {image_size}"
              focal="0.78 0.78"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="x" kv="600" ctrllimited="false"/>
    <velocity name="vy" joint="y" kv="600" ctrllimited="false"/>
    <velocity name="wz" joint="yaw" kv="60" ctrllimited="false"/>
  </actuator>
</mujoco>
"""


@dataclasses.dataclass(frozen=True)
class Prop:
    """A visual cylinder standing on the floor (centre ``x, y``), e.g. a basket; robots pass through it."""

    x: float
    y: float
    radius: float
    height: float
    rgba: tuple[float, float, float, float]


def clip_action(action: np.ndarray) -> np.ndarray:
    """Clip a robot-frame command ``(3,)`` (or ``(2,)``, yaw rate 0) to the robot's limits."""
    a = np.zeros(3, np.float64)
    a[: len(action)] = np.asarray(action, np.float64).reshape(-1)[:3]
    a[:2] = np.clip(a[:2], -MAX_LINEAR, MAX_LINEAR)
    a[2] = np.clip(a[2], -MAX_ANGULAR, MAX_ANGULAR)
    return a


class World:
    """Physics and offscreen rendering of one scene at a time.

    Args:
        image_size: rendered frames are ``(S, S, 3)`` RGB uint8.
        control_dt: seconds one action is held (0.4 s: one key press on the real robot).
        physics_dt: physics time step.
    """

    def __init__(self, image_size: int = 112, control_dt: float = 0.4, physics_dt: float = 0.02):
        os.environ.setdefault("MUJOCO_GL", "egl")
        import mujoco

        self._mj = mujoco
        self.image_size = int(image_size)
        self.control_dt = float(control_dt)
        self.substeps = max(1, round(control_dt / physics_dt))
        self.model = mujoco.MjModel.from_xml_string(_mjcf(self.image_size, physics_dt))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._box_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"box{i}") for i in range(_MAX_BOXES)]
        self._box_bodies = [m.geom_bodyid[g] for g in self._box_ids]
        self._distractor_ids = [[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"distractor{i}_{shape}")
                                 for shape in DISTRACTOR_SHAPES] for i in range(_MAX_DISTRACTORS)]
        self._obstacle_ids = set(self._box_ids) | {g for ids in self._distractor_ids for g in ids}
        self._cup_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "cup")
        self._prop_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"prop{i}") for i in range(_MAX_PROPS)]
        self._floor_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._robot_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "chassis")
        self._cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "ego")
        self._floor_mats = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_MATERIAL, f"floor{i}")
                            for i in range(len(FLOOR_TEXTURES))]
        self._renderer = None
        self.scene: SceneSpec | None = None

    # -- scene -------------------------------------------------------------------------
    def reset(self, scene: SceneSpec) -> None:
        """Dress the model as ``scene`` and put the robot at its start pose, at rest."""
        m, mj = self.model, self._mj
        for slot, (gid, bid) in enumerate(zip(self._box_ids, self._box_bodies)):
            if slot < len(scene.boxes):
                b = scene.boxes[slot]
                size = np.array([b.half_x, b.half_y, b.half_z])
                m.body_pos[bid] = (b.x, b.y, b.half_z)
                m.geom_rgba[gid] = b.rgba
                m.geom_contype[gid] = m.geom_conaffinity[gid] = 2
            else:
                size = np.full(3, 0.1)
                m.body_pos[bid] = _HIDDEN
                m.geom_rgba[gid, 3] = 0.0
                m.geom_contype[gid] = m.geom_conaffinity[gid] = 0
            # Resizing a geom at run time: the broad phase reads rbound and the local AABB. Each box
            # has its own body because a multi-geom body's BVH is fixed at compile time.
            m.geom_size[gid] = size
            m.geom_rbound[gid] = float(np.linalg.norm(size))
            m.geom_aabb[gid] = (0.0, 0.0, 0.0, *size)
        if len(scene.boxes) > _MAX_BOXES or len(scene.distractors) > _MAX_DISTRACTORS:
            raise ValueError(f"scene {scene.seed}: at most {_MAX_BOXES} boxes and {_MAX_DISTRACTORS} distractors, "
                             f"got {len(scene.boxes)} and {len(scene.distractors)}")
        for slot, ids in enumerate(self._distractor_ids):
            d = scene.distractors[slot] if slot < len(scene.distractors) else None
            for shape, gid in zip(DISTRACTOR_SHAPES, ids):
                self._dress_distractor(gid, d if d is not None and d.shape == shape else None)
        self._dress_props(getattr(scene, "props", ()))
        m.geom_size[self._cup_id, :2] = (scene.cup_radius, scene.cup_height / 2)
        m.geom_pos[self._cup_id] = (*scene.target_xy, scene.cup_height / 2)
        m.geom_rgba[self._cup_id] = scene.cup_rgba
        mat = self._floor_mats[scene.floor_texture]
        m.geom_matid[self._floor_id] = mat
        m.mat_rgba[mat] = scene.floor_rgba
        m.light_dir[0] = scene.light_dir
        m.light_diffuse[0] = (scene.light_diffuse,) * 3
        m.vis.headlight.ambient[:] = (scene.light_ambient,) * 3
        # Camera: looking along +x of the robot, pitched down; MuJoCo cameras look along -z.
        p = scene.camera_pitch
        x_axis, y_axis = np.array([0.0, -1.0, 0.0]), np.array([math.sin(p), 0.0, math.cos(p)])
        rot = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)
        quat = np.zeros(4)
        mj.mju_mat2Quat(quat, rot.reshape(-1))
        m.cam_quat[self._cam_id] = quat
        m.cam_pos[self._cam_id] = (CAMERA_FORWARD, 0.0, scene.camera_height)
        # Vertical field of view ``camera_fovy``; the horizontal one follows from the 16:9 sensor.
        focal = CAMERA_SENSOR[1] / 2 / math.tan(math.radians(scene.camera_fovy) / 2)
        m.cam_intrinsic[self._cam_id, :2] = (focal, focal)
        mj.mj_resetData(m, self.data)
        self.data.qpos[:3] = scene.start_pose
        mj.mj_forward(m, self.data)
        self.scene = scene

    def _dress_distractor(self, gid: int, d: Distractor | None) -> None:
        """Show geom ``gid`` as ``d`` (shape already matching), or hide it when ``d`` is None."""
        m = self.model
        m.body_pos[m.geom_bodyid[gid]] = (d.x, d.y, d.height / 2) if d is not None else _HIDDEN
        if d is None:
            m.geom_rgba[gid, 3] = 0.0
            m.geom_contype[gid] = m.geom_conaffinity[gid] = 0
            return
        size = np.zeros(3)
        size[: len(d.size)] = d.size
        half_extent = {"box": size, "sphere": np.full(3, size[0]),
                       "cylinder": np.array([size[0], size[0], size[1]])}[d.shape]
        m.geom_size[gid] = size
        m.geom_rbound[gid] = float(np.linalg.norm(half_extent))
        m.geom_aabb[gid] = (0.0, 0.0, 0.0, *half_extent)
        m.geom_rgba[gid] = d.rgba
        m.geom_contype[gid] = m.geom_conaffinity[gid] = 2

    def _dress_props(self, props) -> None:
        """Extra visual cylinders: ``props`` is a sequence of ``Prop`` (no collisions)."""
        if len(props) > _MAX_PROPS:
            raise ValueError(f"a scene may add at most {_MAX_PROPS} props, got {len(props)}")
        m = self.model
        for slot, gid in enumerate(self._prop_ids):
            if slot < len(props):
                p = props[slot]
                m.geom_size[gid, :2] = (p.radius, p.height / 2)
                m.geom_pos[gid] = (p.x, p.y, p.height / 2)
                m.geom_rgba[gid] = p.rgba
            else:
                m.geom_pos[gid] = _HIDDEN
                m.geom_rgba[gid, 3] = 0.0
            m.geom_rbound[gid] = float(np.linalg.norm(m.geom_size[gid, :2]))

    @property
    def pose(self) -> np.ndarray:
        """``(3,)`` ``[x, y, yaw]`` of the robot in the world frame."""
        return self.data.qpos[:3].copy()

    @property
    def time(self) -> float:
        return float(self.data.time)

    # -- physics -----------------------------------------------------------------------
    def step(self, action: np.ndarray) -> bool:
        """Hold the robot-frame ``action`` (3,) for one control period. Returns True on collision."""
        if self.scene is None:
            raise RuntimeError("World.step before World.reset(scene)")
        vx, vy, wz = clip_action(action)
        d = self.data
        for _ in range(self.substeps):
            yaw = d.qpos[2]
            c, s = math.cos(yaw), math.sin(yaw)
            d.ctrl[:] = (c * vx - s * vy, s * vx + c * vy, wz)
            self._mj.mj_step(self.model, d)
            if self._in_collision():
                return True
        return False

    def _in_collision(self) -> bool:
        d, robot = self.data, self._robot_geom
        for i in range(d.ncon):
            g1, g2 = d.contact.geom1[i], d.contact.geom2[i]
            if (g1 == robot and g2 in self._obstacle_ids) or (g2 == robot and g1 in self._obstacle_ids):
                return True
        return False

    # -- rendering ---------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The robot camera's frame: ``(S, S, 3)`` RGB uint8."""
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera=self._cam_id)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
