# The two commands a newcomer needs: `make run` and `make test`. See README.md.
.PHONY: run test stop lint serve-prod

run:
	@bash scripts/run

test:
	@bash scripts/test

serve-prod:
	@bash scripts/serve-prod

stop:
	@bash scripts/stop

lint:
	@.venv/bin/ruff check .
