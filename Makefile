# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint venv k8s-tools clean

venv:
	./scripts/bootstrap.sh

run: venv
	.venv/bin/recsys up

test: venv
	./scripts/test.sh

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

clean:
	rm -rf .venv .cache data
