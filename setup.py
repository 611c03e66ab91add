"""Build hook: ship the S3PRL registration hook (.pth) and the data folders.

Metadata lives in setup.cfg. This file only adds what declarative config cannot:
``s3prl_emo.pth`` at the root of site-packages, which lets S3PRL's runner find the
``emotion_multilabel`` downstream, plus ``data_splits/`` and ``downstream_configs/``
copied into the package so an installed (non-editable) copy has them too.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = Path(__file__).parent
PTH_NAME = "s3prl_emo.pth"
PTH_LINE = "import _s3prl_emo_hook; _s3prl_emo_hook.install()\n"
DATA_FOLDERS = ("data_splits", "downstream_configs")


class BuildWithHook(build_py):
    def run(self):
        super().run()
        build_lib = Path(self.build_lib)
        (build_lib / PTH_NAME).write_text(PTH_LINE)
        for folder in DATA_FOLDERS:
            target = build_lib / "s3prl_emo" / folder
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(HERE / folder, target)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        build_lib = Path(self.build_lib)
        outputs.append(str(build_lib / PTH_NAME))
        for folder in DATA_FOLDERS:
            outputs += [str(build_lib / "s3prl_emo" / folder / p.name) for p in (HERE / folder).iterdir()]
        return outputs


class EditableWithHook(editable_wheel):
    """``pip install -e .``: files written next to the namespace .pth land in site-packages."""

    def _install_namespaces(self, installation_dir, pth_prefix):
        super()._install_namespaces(installation_dir, pth_prefix)
        Path(installation_dir, PTH_NAME).write_text(PTH_LINE)


setup(cmdclass={"build_py": BuildWithHook, "editable_wheel": EditableWithHook})
