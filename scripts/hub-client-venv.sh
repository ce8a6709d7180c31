#!/usr/bin/env bash
# Creates build/hub-venv with the official Hugging Face clients (huggingface_hub, transformers,
# datasets; no torch) and pyarrow (whose C++ libraries the datasets module links) for
# tests/hub/test_hub_client.py, which re-executes itself with this interpreter when
# the system python lacks them. Needs PyPI access. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/hub-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "huggingface_hub==2.4.0" "transformers==5.24.0" "websocket-client==1.9.2"  # the versions the tests were written against (websocket-client: tests/hub/test_hub_webui.py)
# tests/diff/tokenizer_diff.py: HF tokenizers (pinned: it comes with transformers) and the
# SentencePiece conversion of tokenizer.model files; tests/diff/chat_template_diff.py: jinja2 for
# transformers' apply_chat_template
"$venv/bin/python" -m pip install --quiet "tokenizers==0.23.3" "sentencepiece==0.2.1" "protobuf==7.36.2" "jinja2==3.1.6"
# tests/quant/test_quantize_gguf.py: the PyPI gguf library (gguf-py; needs only numpy)
"$venv/bin/python" -m pip install --quiet "gguf==0.19.0"
# tests/serve/test_openai_client.py: the official OpenAI client and jsonschema
"$venv/bin/python" -m pip install --quiet "openai==3.63.0" "jsonschema==4.26.0"
# tests/safety/test_model_signing.py: OpenSSF model signing (its certificate module imports
# pyOpenSSL without declaring it)
"$venv/bin/python" -m pip install --quiet "model-signing==1.1.1" "pyOpenSSL==26.4.0"
# The datasets module: pyarrow's wheel carries the Arrow/Parquet C++ headers and libraries that
# CMake links (cmake/OhmArrow.cmake; docs/datasets.md), and tests/datasets checks ohm against
# PyPI datasets. Pinned: configure links this wheel's libarrow.so.2600.
"$venv/bin/python" -m pip install --quiet "pyarrow==26.0.1" "datasets==5.2.0"
"$venv/bin/python" -c "import huggingface_hub, transformers, tokenizers, sentencepiece; print('hub client venv:', huggingface_hub.__version__, transformers.__version__, tokenizers.__version__, sentencepiece.__version__)"
