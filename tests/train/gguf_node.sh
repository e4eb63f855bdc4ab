# gguf_node.sh, sourced by gguf_llama.sh and gguf_tok.sh: gguf_need_llama NAME SRC NPM_DIR
# exits 77 (skip) without node >= 20 and npm (node-llama-cpp 3.21.1 needs node 20), else
# installs the tokenizer references and node-llama-cpp (scripts/install-test-refs), exiting
# 1 when that fails.
gguf_need_llama() {
  local name=$1 src=$2 npm=$3
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "SKIP: node/npm not found, so no llama.cpp to read the GGUF files with" >&2
    exit 77
  fi
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "SKIP: node $(node --version) is older than 20, which node-llama-cpp 3.21.1 needs" >&2
    exit 77
  fi
  "$src/scripts/install-test-refs" "$npm" || { echo "$name: installing the tokenizers failed" >&2; exit 1; }
  "$src/scripts/install-test-refs" "$npm" llama || { echo "$name: installing node-llama-cpp failed" >&2; exit 1; }
}
