# Two entry points: `make run` (set up + the default study) and `make test` (set up + the test suite).
# `make run STUDY=ner` (or lm, translation, generate) reproduces another study; `make run-all` every stage of dvc.yaml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

STUDY  ?= sentiment
# extras installed by `make setup` (the test suite needs all of them)
EXTRAS ?= dev,postgres,optuna,auth,music

.PHONY: setup setup-ray run run-all test lint clean mlflow-server

setup: $(STAMP)

# torch==2.13.0 first (the CPU build); every install goes through constraints.txt so nothing drifts.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/pip install -q -c constraints.txt -e ".[$(EXTRAS)]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(if $(findstring optuna,$(EXTRAS)),$(BIN)/pip install -q --no-deps -c constraints.txt hydra-optuna-sweeper==1.3.0 2>&1 | { grep -v "is ignored: it is neither" || true; })
	$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch drifted to ' + v)"
	touch $(STAMP)

# The Ray launcher (hydra/launcher=ray) gets a venv of its own: hydra-ray-launcher pins cloudpickle<3, which would
# move joblib in .venv. Its pins: constraints.txt with the packages that constraints-ray.txt names replaced by its pins.
VENV_RAY  ?= .venv-ray
STAMP_RAY := $(VENV_RAY)/.installed

setup-ray: $(STAMP_RAY)

$(STAMP_RAY): pyproject.toml constraints.txt constraints-ray.txt
	$(PYTHON) -m venv $(VENV_RAY)
	awk -F'==' 'function key(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s } \
	    NR == FNR { if ($$0 !~ /^#/) drop[key($$1)] = 1; next } !(key($$1) in drop)' constraints-ray.txt constraints.txt \
	    | cat - constraints-ray.txt > $(VENV_RAY)/constraints.txt
	$(VENV_RAY)/bin/pip install -q -c $(VENV_RAY)/constraints.txt torch==2.13.0 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(VENV_RAY)/bin/pip install -q -c $(VENV_RAY)/constraints.txt -e ".[dev,ray]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(VENV_RAY)/bin/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch drifted to ' + v)"
	touch $(STAMP_RAY)

# The stages call `python`: the venv's, via PATH. DVC skips a stage whose committed outputs are up to date (a fresh
# clone prints the committed results at once); FORCE=1 re-runs every stage of the study from the data fetch on.
FORCE ?=
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro $(if $(filter 1,$(FORCE)),--force )report@$(STUDY)
	@cat results/$(STUDY)/report.md

run-all: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup setup-ray
	$(BIN)/pytest -q --durations=25 $(PYTEST_ARGS)   # the 25 slowest tests listed: the default run stays near 20 min

lint: setup
	$(BIN)/ruff check .

# A shared MLflow tracking server (UI + REST API); runs need only MLFLOW_TRACKING_URI=http://HOST:PORT.
# Backend: sqlite:///PATH or postgresql://USER@HOST:5432/DB (the postgres extra). Clients upload artifacts
# through the server into MLFLOW_ARTIFACTS: a directory, or s3://bucket/prefix (+ MLFLOW_S3_ENDPOINT_URL, AWS
# credentials). Binds to 127.0.0.1; expose it deliberately:
#   make mlflow-server MLFLOW_HOST=0.0.0.0 MLFLOW_SERVER_ARGS="--allowed-hosts mlflow.example.org"
MLFLOW_BACKEND     ?= sqlite:///$(CURDIR)/mlflow.db
MLFLOW_ARTIFACTS   ?= $(CURDIR)/mlartifacts
MLFLOW_HOST        ?= 127.0.0.1
MLFLOW_PORT        ?= 5000
MLFLOW_SERVER_ARGS ?=
# MLflow's job runner (GenAI evaluation jobs: 8 more processes, ~1.4 GB) stays off unless MLFLOW_JOBS=true.
MLFLOW_JOBS        ?= false
# With users (MLflow's basic-auth app, the auth extra): MLFLOW_AUTH=true. Clients then set MLFLOW_TRACKING_USERNAME
# and MLFLOW_TRACKING_PASSWORD. The first start creates the admin user `admin` with MLFLOW_AUTH_ADMIN_PASSWORD (12+
# characters; needed then only). MLFLOW_FLASK_SERVER_SECRET_KEY (the same for every worker and restart): taken from
# the environment, else from MLFLOW_AUTH_DIR/secret_key (made on the first start). Users, passwords, permissions:
# MLFLOW_AUTH_DB. MLflow's auth config is written to MLFLOW_AUTH_DIR/basic_auth.ini from these variables unless
# MLFLOW_AUTH_CONFIG names an ini file of your own. Users: see docs/scaling.md (Shared MLflow server).
#   MLFLOW_AUTH_ADMIN_PASSWORD='...' make mlflow-server MLFLOW_AUTH=true
MLFLOW_AUTH        ?= false
MLFLOW_AUTH_DIR    ?= $(CURDIR)/mlflow-auth
MLFLOW_AUTH_DB     ?= sqlite:///$(MLFLOW_AUTH_DIR)/basic_auth.db
MLFLOW_AUTH_CONFIG ?=
# what a user may do in the experiments of others: READ (MLflow's default), EDIT, MANAGE or NO_PERMISSIONS
MLFLOW_AUTH_DEFAULT_PERMISSION ?= READ
AUTH_INI := $(or $(MLFLOW_AUTH_CONFIG),$(MLFLOW_AUTH_DIR)/basic_auth.ini)
ifeq ($(MLFLOW_AUTH),true)
AUTH_ENV  := MLFLOW_AUTH_CONFIG_PATH='$(AUTH_INI)' \
             MLFLOW_FLASK_SERVER_SECRET_KEY="$${MLFLOW_FLASK_SERVER_SECRET_KEY:-$$(cat '$(MLFLOW_AUTH_DIR)/secret_key')}"
AUTH_ARGS := --app-name basic-auth
endif

mlflow-server: setup
ifeq ($(MLFLOW_AUTH),true)
	@mkdir -p '$(MLFLOW_AUTH_DIR)' && chmod 700 '$(MLFLOW_AUTH_DIR)'
	@test -n "$$MLFLOW_FLASK_SERVER_SECRET_KEY" || test -s '$(MLFLOW_AUTH_DIR)/secret_key' || \
	    (umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_hex(32))' > '$(MLFLOW_AUTH_DIR)/secret_key')
	$(if $(MLFLOW_AUTH_CONFIG),,@printf '%s\n' '[mlflow]' 'default_permission = $(MLFLOW_AUTH_DEFAULT_PERMISSION)' \
	    'database_uri = $(MLFLOW_AUTH_DB)' 'admin_username = admin' \
	    'authorization_function = mlflow.server.auth:authenticate_request_basic_auth' > '$(AUTH_INI)')
endif
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$(MLFLOW_JOBS) $(AUTH_ENV) exec $(BIN)/mlflow server $(AUTH_ARGS) \
	    --backend-store-uri '$(MLFLOW_BACKEND)' --serve-artifacts --artifacts-destination '$(MLFLOW_ARTIFACTS)' \
	    --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) $(MLFLOW_SERVER_ARGS)

clean:
	rm -rf $(VENV) $(VENV_RAY) outputs .pytest_cache
