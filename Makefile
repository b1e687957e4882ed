# The two commands of the README, plus the local world's own entry points.
.PHONY: demo test lint up down

## demo: run the main job end to end on the local world
demo:
	infra/local/demo

## test: the whole test suite (static checks, local world, every test); what CI runs
test:
	tests/run

lint:
	tests/lint

up:
	infra/local/up

down:
	infra/local/down
