-- Headless Neovim driver for tests/nvim (never interactive): see nvim_driver.py.
--
-- Uses editors/nvim/lsp/speedsmith.lua from 'runtimepath', overridden to run the server from
-- this checkout; opens SPEEDSMITH_FILE, asks for code actions at SPEEDSMITH_CURSOR_LINE,
-- executes "Optimize SPEEDSMITH_FUNCTION", waits for the outcome (Neovim's own
-- workspace/applyEdit handler changing the buffer, or the message explaining why not), writes
-- what happened as JSON and quits.
--
-- Inputs (environment), required: SPEEDSMITH_REPO, SPEEDSMITH_PYTHON, SPEEDSMITH_PYTHONPATH,
-- SPEEDSMITH_PROJECT, SPEEDSMITH_RESULT. Optional: SPEEDSMITH_BACKEND ('replay', the default,
-- needs SPEEDSMITH_REPLAY; or 'llama'), SPEEDSMITH_FILE (sumsq.py), SPEEDSMITH_FUNCTION
-- (sum_of_squares), SPEEDSMITH_CURSOR_LINE (6, 1-based), SPEEDSMITH_EXPECT (text the buffer
-- must end up containing; unset: any outcome is recorded), SPEEDSMITH_BUDGET (2),
-- SPEEDSMITH_SEED (1), SPEEDSMITH_WAIT_MS (40000), SPEEDSMITH_SERVER_CACHE_DIR (the server's
-- SPEEDSMITH_CACHE_DIR), SPEEDSMITH_SELECT_END_LINE (1-based: ask for the code actions of a
-- selection from SPEEDSMITH_CURSOR_LINE to that line instead of a cursor), SPEEDSMITH_ACTION
-- (the title to run; default "Optimize SPEEDSMITH_FUNCTION").

local function env(name, default)
  local value = os.getenv(name)
  if value == nil or value == '' then
    if default ~= nil then
      return default
    end
    error('missing environment variable ' .. name)
  end
  return value
end

local result_path = env('SPEEDSMITH_RESULT')
local started = vim.uv.hrtime()
local function elapsed_ms()
  return math.floor((vim.uv.hrtime() - started) / 1e6)
end

local result = {
  ok = false,
  error = vim.NIL,
  titles = {},
  before_lines = {},
  lines = {},
  messages = {},
  progress = {},
  apply_edits = {},
  execute = vim.NIL,
}

local function finish()
  result.total_ms = elapsed_ms()
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
  vim.cmd('qa!')
end

local function target_path()
  return env('SPEEDSMITH_PROJECT') .. '/' .. env('SPEEDSMITH_FILE', 'sumsq.py')
end

local ok, setup_err = pcall(function()
  local repo = env('SPEEDSMITH_REPO')
  vim.opt.runtimepath:prepend(repo .. '/editors/nvim')
  vim.opt.swapfile = false
  vim.opt.shadafile = 'NONE'

  local backend = env('SPEEDSMITH_BACKEND', 'replay')
  local init_options = {
    backend = backend,
    budget = tonumber(env('SPEEDSMITH_BUDGET', '2')),
    seed = tonumber(env('SPEEDSMITH_SEED', '1')),
  }
  if backend == 'replay' then
    init_options.replayFile = env('SPEEDSMITH_REPLAY')
  end
  local cmd_env = { PYTHONPATH = env('SPEEDSMITH_PYTHONPATH') }
  local cache_dir = os.getenv('SPEEDSMITH_SERVER_CACHE_DIR')
  if cache_dir and cache_dir ~= '' then
    cmd_env.SPEEDSMITH_CACHE_DIR = cache_dir
  end
  result.init_options = init_options

  vim.lsp.config('speedsmith', {
    cmd = { env('SPEEDSMITH_PYTHON'), '-m', 'speedsmith', 'serve' },
    cmd_env = cmd_env,
    root_markers = { 'pyproject.toml' },
    init_options = init_options,
    on_exit = function(code, signal)
      result.server_exit = { code = code, signal = signal }
    end,
  })
  vim.lsp.enable('speedsmith')

  -- Record what the server tells the user, its progress and the edits it asks for.
  local show_message = vim.lsp.handlers['window/showMessage']
  vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, config)
    table.insert(
      result.messages,
      { type = params.type, message = params.message, t_ms = elapsed_ms() }
    )
    return show_message(err, params, ctx, config)
  end
  local apply_edit = vim.lsp.handlers['workspace/applyEdit']
  vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx, config)
    local bufnr = vim.uri_to_bufnr(vim.uri_from_fname(target_path()))
    local reply = apply_edit(err, params, ctx, config)
    table.insert(result.apply_edits, {
      params = params,
      reply = reply,
      buffer_version = vim.lsp.util.buf_versions[bufnr],
      t_ms = elapsed_ms(),
    })
    return reply
  end
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(args)
      local value = args.data and args.data.params and args.data.params.value
      if type(value) == 'table' then
        table.insert(result.progress, {
          kind = value.kind or vim.NIL,
          title = value.title or vim.NIL,
          message = value.message or vim.NIL,
          t_ms = elapsed_ms(),
        })
      end
    end,
  })
end)

local function main()
  local qualname = env('SPEEDSMITH_FUNCTION', 'sum_of_squares')
  local cursor_line = tonumber(env('SPEEDSMITH_CURSOR_LINE', '6'))
  local expected = os.getenv('SPEEDSMITH_EXPECT')
  if expected == '' then
    expected = nil
  end
  local wait_ms = tonumber(env('SPEEDSMITH_WAIT_MS', '40000'))
  vim.cmd.edit(vim.fn.fnameescape(target_path()))
  local bufnr = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[bufnr].filetype
  result.before_lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)

  local client
  local attached = vim.wait(15000, function()
    client = vim.lsp.get_clients({ name = 'speedsmith', bufnr = bufnr })[1]
    return result.server_exit ~= nil or (client ~= nil and client.initialized == true)
  end, 50)
  if not attached or result.server_exit then
    error(
      string.format(
        'speedsmith never attached to %s (filetype=%s, server exit: %s; see lsp.log)',
        target_path(),
        tostring(result.filetype),
        vim.inspect(result.server_exit)
      )
    )
  end
  result.offset_encoding = client.offset_encoding
  result.root_dir = client.root_dir

  -- Inside the function, e.g. sum_of_squares' loop line `for i in range(len(nums)):`.
  vim.api.nvim_win_set_cursor(0, { cursor_line, 8 })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  local select_end = tonumber(os.getenv('SPEEDSMITH_SELECT_END_LINE') or '')
  if select_end then
    -- What a visual selection gives vim.lsp.buf.code_action: from column 4 of the cursor's
    -- line to column 12 of the last line.
    params = vim.lsp.util.make_given_range_params(
      { cursor_line, 4 },
      { select_end, 12 },
      bufnr,
      client.offset_encoding
    )
  end
  result.range = params.range
  params.context = { diagnostics = {}, triggerKind = 1 }
  local response, reason = client:request_sync('textDocument/codeAction', params, 10000, bufnr)
  if not response then
    error('textDocument/codeAction got no response: ' .. tostring(reason))
  end
  if response.err then
    error('textDocument/codeAction failed: ' .. vim.inspect(response.err))
  end

  local action
  local wanted = os.getenv('SPEEDSMITH_ACTION')
  if wanted == nil or wanted == '' then
    wanted = 'Optimize ' .. qualname
  end
  for _, item in ipairs(response.result or {}) do
    table.insert(result.titles, item.title)
    if item.title == wanted then
      action = item
    end
  end
  if not action then
    error('no "' .. wanted .. '" action')
  end
  if action.edit then
    error('the action carries an edit; expected only a command')
  end
  -- A CodeAction (command is a Command table) or a bare Command (command is a string).
  local command = type(action.command) == 'table' and action.command or action
  result.command = command.command

  local executed = false
  local messages_before = #result.messages
  result.execute_sent_ms = elapsed_ms()
  client:exec_cmd(command, { bufnr = bufnr }, function(err, res)
    executed = true
    result.execute_ms = elapsed_ms()
    result.execute = { err = err or vim.NIL, result = res or vim.NIL }
  end)

  local function has_expected()
    local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
    return text:find(expected, 1, true) ~= nil
  end
  local function verdict()
    return vim.tbl_get(result.execute, 'result', 'verdict')
  end
  vim.wait(wait_ms, function()
    return executed or result.server_exit ~= nil
  end, 50)
  if executed then
    -- The server applies its edit (if any) and shows its message before it answers; allow a
    -- moment for Neovim to have handled both.
    vim.wait(5000, function()
      if result.execute.err ~= vim.NIL then
        return true
      end
      if expected then
        return verdict() ~= 'improved' or has_expected() -- not improved: fail now
      end
      return #result.messages > messages_before
    end, 20)
  end
  result.lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  result.modified = vim.bo[bufnr].modified
  if not executed then
    error(
      string.format(
        'speedsmith.optimize did not answer within %d ms (server exit: %s)',
        wait_ms,
        vim.inspect(result.server_exit)
      )
    )
  end
  if expected and not has_expected() then
    error(
      string.format('buffer never changed to the optimised function (command answered: %s)', executed)
    )
  end
  result.ok = true
end

vim.api.nvim_create_autocmd('VimEnter', {
  once = true,
  callback = function()
    vim.schedule(function()
      if not ok then
        result.error = 'setup: ' .. tostring(setup_err)
      else
        local run_ok, run_err = xpcall(main, debug.traceback)
        if not run_ok then
          result.error = tostring(run_err)
        end
      end
      pcall(function()
        result.lines = #result.lines > 0 and result.lines or vim.api.nvim_buf_get_lines(0, 0, -1, false)
      end)
      finish()
    end)
  end,
})
