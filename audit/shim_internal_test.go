package audit

// SearchSQL exposes the search query for plan tests.
func SearchSQL(q Query, limit int) (string, []any, error) { return searchSQL(q, 0, limit) }
