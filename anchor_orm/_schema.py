"""Finds, on the app's session model, the foreign key and relationship to its user."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Mapper, RelationshipProperty

from anchor_orm._errors import ConfigurationError
from anchor_orm._models import AnchorSessionBase

SessionT = TypeVar("SessionT", bound=AnchorSessionBase)

_HOW_TO = """\
Declare the owner on your table model, for example:

    class {name}(AnchorSessionBase, table=True):
        user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
        user: User = Relationship()
"""


@dataclass(frozen=True)
class SessionModelInfo(Generic[SessionT]):
    model: type[SessionT]
    user_id_column: InstrumentedAttribute[Any]
    user_relationship: InstrumentedAttribute[Any]
    user_model: type[Any]
    # The attribute of the user whose value the session's foreign key holds.
    user_key_attribute: str

    def user_key(self, user: Any) -> Any:
        if not isinstance(user, self.user_model):
            raise TypeError(
                f"expected a {self.user_model.__name__} (the user model of "
                f"{self.model.__name__}), got {type(user).__name__}"
            )
        value = getattr(user, self.user_key_attribute)
        if value is None:
            raise ValueError(
                f"this {self.user_model.__name__} has no {self.user_key_attribute} yet: "
                "add it to the database session and flush before creating its session."
            )
        return value


def inspect_session_model(model: type[SessionT]) -> SessionModelInfo[SessionT]:
    """Reads the user link off ``model``, or fails naming what to add."""
    name = getattr(model, "__name__", repr(model))
    if not (isinstance(model, type) and issubclass(model, AnchorSessionBase)):
        raise ConfigurationError(f"{name} must be a subclass of AnchorSessionBase.")
    table = getattr(model, "__table__", None)
    if not isinstance(table, sa.Table):
        raise ConfigurationError(
            f"{name} is not a table model: declare it with "
            f"`class {name}(AnchorSessionBase, table=True)`.\n" + _HOW_TO.format(name=name)
        )
    fk_columns = [column for column in table.columns if column.foreign_keys]
    if len(fk_columns) > 1:
        fk_columns = [column for column in fk_columns if column.name == "user_id"]
    if len(fk_columns) != 1:
        raise ConfigurationError(
            f"{name} has no foreign key to your user table (or several, none named "
            "user_id).\n" + _HOW_TO.format(name=name)
        )
    fk_column = fk_columns[0]
    try:
        mapper: Mapper[Any] = sa_inspect(model)
        relationships = list(mapper.relationships)
    except SQLAlchemyError as error:
        raise ConfigurationError(f"{name}'s mappings do not configure: {error}") from error
    owner: RelationshipProperty[Any] | None = next(
        (
            rel
            for rel in relationships
            if fk_column in rel.local_columns and rel.direction.name == "MANYTOONE"
        ),
        None,
    )
    if owner is None:
        raise ConfigurationError(
            f"{name} has the foreign key {fk_column.name} but no relationship to the user.\n"
            + _HOW_TO.format(name=name)
        )
    (foreign_key,) = fk_column.foreign_keys
    user_mapper = owner.mapper
    referenced = user_mapper.get_property_by_column(foreign_key.column)
    if fk_column.nullable:
        raise ConfigurationError(
            f"{name}.{fk_column.name} is nullable: a session always has an owner. "
            f"Declare it without `| None`.\n" + _HOW_TO.format(name=name)
        )
    return SessionModelInfo(
        model=model,
        user_id_column=getattr(model, mapper.get_property_by_column(fk_column).key),
        user_relationship=getattr(model, owner.key),
        user_model=user_mapper.class_,
        user_key_attribute=referenced.key,
    )
