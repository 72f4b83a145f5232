# The two commands a newcomer runs: `make demo` and `make test`.
GO ?= go

.PHONY: demo test bench vet fuzz

demo:
	@scripts/ensure-postgres.sh
	$(GO) run ./cmd/vigil demo

test:
	@scripts/ensure-postgres.sh
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...

# Benchmarks through the real path; figures are ratios against baselines measured in the same run.
bench:
	@scripts/ensure-postgres.sh
	$(GO) test -run '^$$' -bench 'EndToEnd|RiverNoop|TimeToEscalation' -benchtime 200x ./internal/app/
	$(GO) test -run '^$$' -bench . -benchtime 2s ./rules/ ./triage/ground/ ./llm/
	$(GO) test -run '^$$' -bench . -benchtime 2s ./audit/

# Each fuzz target for a fixed time (CI runs only the committed seeds, as part of `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseNotification$$' -fuzztime 30s ./fhir/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRef$$' -fuzztime 30s ./fhir/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalSnapshot$$' -fuzztime 30s ./fhir/
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime 30s ./access/
	$(GO) test -run '^$$' -fuzz '^FuzzParseScope$$' -fuzztime 30s ./access/
