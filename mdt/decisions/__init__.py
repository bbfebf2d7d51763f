"""Treatment proposals, specialists' opinions and the chair's signed consensus."""
# Importing the feature installs the guard that keeps signed records unchanged.
from mdt.decisions import guards as guards
