<%!
    import re

    # Alembic wraps the commands it autogenerates in two banner comments
    # ("please adjust!" / "end Alembic commands"); the revisions here go without.
    _BANNER = re.compile(r"^ *# ### .* ###\n?", re.MULTILINE)

    def commands(rendered):
        return _BANNER.sub("", rendered or "").strip() or "pass"
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa

import mdt.db
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${commands(upgrades)}


def downgrade():
    ${commands(downgrades)}
