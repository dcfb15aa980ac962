"""The project's vocabulary: names and constants that data, model, evaluation and simulator share.

- :mod:`~mobile_vla.vocab.instructions` — sides, instruction templates, ``side_of``, mirroring;
- :mod:`~mobile_vla.vocab.actions` — action names and units, the teleop speed, the 9 move classes;
- :mod:`~mobile_vla.vocab.scene` — the per-frame scene-geometry labels;
- :mod:`~mobile_vla.vocab.batch` — the keys of a training batch.

Nothing here imports torch, the simulator or any other package of the project.
"""
