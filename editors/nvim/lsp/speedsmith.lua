-- speedsmith for Neovim >= 0.11 (see editors/nvim/README.md).
--
-- Neovim reads lsp/<name>.lua files from 'runtimepath': put editors/nvim on it (or copy this
-- file to ~/.config/nvim/lsp/speedsmith.lua), then call vim.lsp.enable('speedsmith').
-- Settings are camelCase; unknown or invalid ones are ignored with a warning.

---@type vim.lsp.Config
return {
  cmd = { 'speedsmith', 'serve' },
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.py', '.git' },
  init_options = {
    -- Candidates to generate: 'quick' (4), 'standard' (8), 'max' (24) or a number.
    budget = 'quick',
    -- The lower bound of the speedup's 95% confidence interval must clear this.
    minSpeedup = 1.1,
    -- Layers to offload to the GPU (-1: all); ignored by CPU-only builds of llama.cpp.
    nGpuLayers = -1,
    -- A GGUF model; by default the embedded SmolLM2-135M-Instruct.
    -- modelPath = '/path/to/model.gguf',
    -- The interpreter that runs your project's tests (e.g. its virtualenv's python).
    -- python = '/path/to/project/.venv/bin/python',
  },
}
