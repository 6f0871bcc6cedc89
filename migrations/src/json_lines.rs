//! Folding a child table's rows into a JSON array column of their parent:
//! for lines that never change once written (an order's lines, a
//! reservation's items), one row to write and to read instead of two.

use sea_orm_migration::prelude::*;

/// One field of a line: its JSON name, its child column and that column's
/// SQL type.
pub type Field<'a> = (&'a str, &'a str, &'a str);

/// Fills `parent.column` with a JSON array of `child`'s rows whose `fk`
/// is the parent's `key`, ordered by `order_by`: each row one object of
/// `fields` (JSON name, child column). Parents without children get `[]`.
pub async fn fold_into(
    manager: &SchemaManager<'_>,
    parent: (&str, &str, &str),
    child: (&str, &str, &str),
    fields: &[Field<'_>],
) -> Result<(), DbErr> {
    let (parent_table, key, column) = parent;
    let (child_table, fk, order_by) = child;
    let db = manager.get_connection();
    let (array, object) = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => ("json_agg", "json_build_object"),
        _ => ("json_group_array", "json_object"),
    };
    let pairs = fields
        .iter()
        .map(|(name, child_column, _)| format!("'{name}', c.{child_column}"))
        .collect::<Vec<_>>()
        .join(", ");
    db.execute_unprepared(&format!(
        "UPDATE {parent_table} SET {column} = COALESCE((SELECT CAST({array}({object}({pairs}) \
         ORDER BY c.{order_by}) AS TEXT) FROM {child_table} c WHERE c.{fk} = {parent_table}.{key}), '[]')"
    ))
    .await?;
    Ok(())
}

/// The reverse of [`fold_into`]: inserts into `child` (`fk`, `position`,
/// then each of `fields`' columns) one row per element of every
/// `parent.column` array, each value cast to its column's type,
/// `position` counting from 0 (`None` when the child has no position
/// column).
pub async fn unfold_from(
    manager: &SchemaManager<'_>,
    parent: (&str, &str, &str),
    child: (&str, &str, Option<&str>),
    fields: &[Field<'_>],
) -> Result<(), DbErr> {
    let (parent_table, key, column) = parent;
    let (child_table, fk, position) = child;
    let db = manager.get_connection();
    let postgres = manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let (elements, index, field) = if postgres {
        (
            format!("json_array_elements(p.{column}::json) WITH ORDINALITY AS j(value, ord)"),
            "j.ord - 1",
            "j.value->>'{}'",
        )
    } else {
        (
            format!("json_each(p.{column}) AS j"),
            "j.key",
            "json_extract(j.value, '$.{}')",
        )
    };
    let columns: Vec<&str> = fields.iter().map(|(_, c, _)| *c).collect();
    let values: Vec<String> = fields
        .iter()
        .map(|(name, _, sql_type)| format!("CAST({} AS {sql_type})", field.replace("{}", name)))
        .collect();
    let (position_column, position_value) = match position {
        Some(position) => (format!(", {position}"), format!(", {index}")),
        None => (String::new(), String::new()),
    };
    db.execute_unprepared(&format!(
        "INSERT INTO {child_table} ({fk}{position_column}, {}) \
         SELECT p.{key}{position_value}, {} FROM {parent_table} p, {elements}",
        columns.join(", "),
        values.join(", ")
    ))
    .await?;
    Ok(())
}
