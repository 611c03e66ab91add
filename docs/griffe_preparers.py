"""Griffe extension: the recipes' ``prepare_<corpus> = recipe_preparer(...)`` shown as functions.

Static analysis sees those names as plain assignments; their signature and docstring exist
only at run time (``builder.recipe_preparer``), so they are read from the imported module.
"""

from __future__ import annotations

from typing import Any

import griffe

FACTORIES = ("recipe_preparer(", "podcast_preparer(")


class RecipePreparers(griffe.Extension):
    """Replace each factory-made ``prepare_<corpus>`` attribute by the function it holds."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Swap the attributes of the recipe modules once the package is loaded."""
        for module in pkg.get_member("data.corpora").modules.values():
            made = [a for a in module.attributes.values() if str(a.value or "").startswith(FACTORIES)]
            if made:
                inspected = griffe.inspect(module.path)
            for attribute in made:
                function = inspected[attribute.name]
                function.lineno, function.endlineno = attribute.lineno, attribute.endlineno
                module.set_member(attribute.name, function)
