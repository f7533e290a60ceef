"""Compatibility name: the toy warm-start's stage settings are :class:`zerosearch.warmstart.stages.StageConfig`.

The toy policy's warm-start runs through the staged warm-start every world uses
(:func:`zerosearch.warmstart.stages.run_stages`, TRL); ``toyworld.build`` builds its two stages. This alias
keeps ``from zerosearch.toyworld.warmstart import WarmStartConfig`` (the demo's config) working; new code
imports ``StageConfig`` from ``zerosearch.warmstart.stages``.
"""

from zerosearch.warmstart.stages import StageConfig as WarmStartConfig

__all__ = ["WarmStartConfig"]
