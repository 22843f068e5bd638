"""hardship files: one row per period of a hardship-file workflow

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hardshipfile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('period', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False,
                                      server_default='active'))
        batch_op.add_column(sa.Column('closed_reason', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
        batch_op.create_index(batch_op.f('ix_hardshipfile_file_id'), ['file_id'], unique=False)
        batch_op.create_index('ux_hardshipfile_file_period', ['file_id', 'period'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('hardshipfile', schema=None) as batch_op:
        batch_op.drop_index('ux_hardshipfile_file_period')
        batch_op.drop_index(batch_op.f('ix_hardshipfile_file_id'))
        batch_op.drop_column('closed_reason')
        batch_op.drop_column('stage')
        batch_op.drop_column('period')
        batch_op.drop_column('file_id')
