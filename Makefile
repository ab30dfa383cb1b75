# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint venv k8s-tools clean

venv:
	./scripts/bootstrap.sh

# Only what runs (no dev tools); the install shows pip's progress, and `recsys up` ends
# its start-up with one line naming the api, the collector and the demo page.
run:
	./scripts/bootstrap.sh runtime
	.venv/bin/recsys up

test: venv
	./scripts/test.sh

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

clean:
	rm -rf .venv .cache data
