# The two commands a newcomer needs: `make run` and `make test`. See README.md.
.PHONY: run test stop lint

run:
	@bash scripts/run

test:
	@bash scripts/test

stop:
	@bash scripts/stop

lint:
	@.venv/bin/ruff check .
