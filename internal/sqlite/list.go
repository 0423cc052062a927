package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hookstep/hookstep/internal/webhook"
)

// defaultLimit is the page size when ListOptions.Limit is 0.
const defaultLimit = webhook.DefaultLimit

// query is a SELECT under construction: the columns and table, and the
// conditions (ANDed) with their arguments.
type query struct {
	from  string // "<columns> FROM <table>"
	where []string
	args  []any
}

// and adds a condition with its arguments.
func (q *query) and(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

// in adds "col IN (...)" for a non-empty list of values.
func in[T any](q *query, col string, values []T) {
	if len(values) == 0 {
		return
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	q.and(col+" IN ("+placeholders(len(values))+")", args...)
}

// hasChannel adds the condition that the JSON array in col holds channel.
func hasChannel(q *query, col, channel string) {
	if channel == "" {
		return
	}
	q.and("EXISTS (SELECT 1 FROM json_each("+col+") WHERE json_each.value = ?)", channel)
}

// sql returns the statement and its arguments, followed by the clauses in
// tail (ORDER BY, LIMIT) and their arguments.
func (q *query) sql(tail string, tailArgs ...any) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(q.from)
	if len(q.where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(q.where, " AND "))
	}
	b.WriteString(" ")
	b.WriteString(tail)
	return b.String(), append(slices.Clone(q.args), tailArgs...)
}

// list runs q as one page of a list ordered by the key column, as
// webhook.ListOptions describes. It reads one row more than the page to
// learn whether there are more.
func list[T any](ctx context.Context, db querier, q query, key string, opts webhook.ListOptions, scan func(scanner) (T, error)) (webhook.Page[T], error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, webhook.MaxLimit)
	backward := opts.Backward && opts.Cursor != ""
	// Scanning the table in ascending key order serves an ascending list
	// read forward and a descending list read backward.
	scanAsc := opts.Ascending != backward
	if opts.Cursor != "" {
		op := "<"
		if scanAsc {
			op = ">"
		}
		q.and(key+" "+op+" ?", opts.Cursor)
	}
	dir := "DESC"
	if scanAsc {
		dir = "ASC"
	}
	stmt, args := q.sql(fmt.Sprintf("ORDER BY %s %s LIMIT ?", key, dir), limit+1)
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return webhook.Page[T]{}, err
	}
	defer rows.Close()
	var items []T
	for rows.Next() {
		it, err := scan(rows)
		if err != nil {
			return webhook.Page[T]{}, err
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return webhook.Page[T]{}, err
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if backward {
		slices.Reverse(items)
	}
	return webhook.Page[T]{Items: items, More: more}, nil
}

// collect runs a query and scans every row.
func collect[T any](ctx context.Context, db querier, stmt string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []T
	for rows.Next() {
		it, err := scan(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}
