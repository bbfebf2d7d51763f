"""HTML views for cases."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("cases", __name__)
