from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, TimestampMixin

PHONE_CHECK = "{c} IS NULL OR (length({c}) = 12 AND substr({c}, 1, 2) = '+7')"


class Courier(TimestampMixin, Base):
    __tablename__ = "couriers"
    __table_args__ = (
        CheckConstraint(PHONE_CHECK.format(c="phone"), name="phone_format"),
        CheckConstraint("length(trim(display_name)) > 0", name="display_name_not_blank"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(default=True)
    b24_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
