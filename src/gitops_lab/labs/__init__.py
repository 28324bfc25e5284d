"""Labs: the lab format (lab.yaml + Markdown per step), its loader and the runner.

See docs/authoring-labs.md for the format and the action vocabulary.
"""

from gitops_lab.labs.loader import Lab, LabFormatError, Step, load_lab
from gitops_lab.labs.vocabulary import ACTIONS

__all__ = ["ACTIONS", "Lab", "LabFormatError", "Step", "load_lab"]
