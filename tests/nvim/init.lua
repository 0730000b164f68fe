-- Headless Neovim driver for tests/nvim/test_nvim_e2e.py (never interactive).
--
-- Uses editors/nvim/lsp/speedsmith.lua from 'runtimepath', overridden to run the server from
-- this checkout with the replay backend; opens sumsq.py, asks for code actions inside
-- sum_of_squares, executes "Optimize sum_of_squares", waits for Neovim's own
-- workspace/applyEdit handler to change the buffer, writes what happened as JSON and quits.
--
-- Inputs (environment): SPEEDSMITH_REPO, SPEEDSMITH_PYTHON, SPEEDSMITH_PYTHONPATH,
-- SPEEDSMITH_PROJECT, SPEEDSMITH_REPLAY, SPEEDSMITH_RESULT, SPEEDSMITH_WAIT_MS.

local function env(name)
  local value = os.getenv(name)
  if value == nil or value == '' then
    error('missing environment variable ' .. name)
  end
  return value
end

local result_path = env('SPEEDSMITH_RESULT')
local result = {
  ok = false,
  error = vim.NIL,
  titles = {},
  lines = {},
  messages = {},
  progress = {},
  apply_edits = {},
  execute = vim.NIL,
}

local function finish()
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
  vim.cmd('qa!')
end

local ok, setup_err = pcall(function()
  local repo = env('SPEEDSMITH_REPO')
  vim.opt.runtimepath:prepend(repo .. '/editors/nvim')
  vim.opt.swapfile = false
  vim.opt.shadafile = 'NONE'

  vim.lsp.config('speedsmith', {
    cmd = { env('SPEEDSMITH_PYTHON'), '-m', 'speedsmith', 'serve' },
    cmd_env = { PYTHONPATH = env('SPEEDSMITH_PYTHONPATH') },
    root_markers = { 'pyproject.toml' },
    init_options = {
      backend = 'replay',
      replayFile = env('SPEEDSMITH_REPLAY'),
      budget = 2,
      seed = 1,
    },
    on_exit = function(code, signal)
      result.server_exit = { code = code, signal = signal }
    end,
  })
  vim.lsp.enable('speedsmith')

  -- Record what the server tells the user, its progress and the edits it asks for.
  local show_message = vim.lsp.handlers['window/showMessage']
  vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, config)
    table.insert(result.messages, { type = params.type, message = params.message })
    return show_message(err, params, ctx, config)
  end
  local apply_edit = vim.lsp.handlers['workspace/applyEdit']
  vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx, config)
    local bufnr = vim.uri_to_bufnr(vim.uri_from_fname(env('SPEEDSMITH_PROJECT') .. '/sumsq.py'))
    local reply = apply_edit(err, params, ctx, config)
    table.insert(result.apply_edits, {
      params = params,
      reply = reply,
      buffer_version = vim.lsp.util.buf_versions[bufnr],
    })
    return reply
  end
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(args)
      local value = args.data and args.data.params and args.data.params.value
      if type(value) == 'table' then
        table.insert(result.progress, value.kind or vim.NIL)
      end
    end,
  })
end)

local function main()
  local project = env('SPEEDSMITH_PROJECT')
  local wait_ms = tonumber(os.getenv('SPEEDSMITH_WAIT_MS') or '40000')
  vim.cmd.edit(vim.fn.fnameescape(project .. '/sumsq.py'))
  local bufnr = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[bufnr].filetype

  local client
  local attached = vim.wait(15000, function()
    client = vim.lsp.get_clients({ name = 'speedsmith', bufnr = bufnr })[1]
    return result.server_exit ~= nil or (client ~= nil and client.initialized == true)
  end, 50)
  if not attached or result.server_exit then
    error(
      string.format(
        'speedsmith never attached to sumsq.py (filetype=%s, server exit: %s; see lsp.log)',
        tostring(result.filetype),
        vim.inspect(result.server_exit)
      )
    )
  end
  result.offset_encoding = client.offset_encoding
  result.root_dir = client.root_dir

  -- Inside sum_of_squares: the loop line `for i in range(len(nums)):` (1-based line 6).
  vim.api.nvim_win_set_cursor(0, { 6, 8 })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, triggerKind = 1 }
  local response, reason = client:request_sync('textDocument/codeAction', params, 10000, bufnr)
  if not response then
    error('textDocument/codeAction got no response: ' .. tostring(reason))
  end
  if response.err then
    error('textDocument/codeAction failed: ' .. vim.inspect(response.err))
  end

  local action
  for _, item in ipairs(response.result or {}) do
    table.insert(result.titles, item.title)
    if item.title == 'Optimize sum_of_squares' then
      action = item
    end
  end
  if not action then
    error('no "Optimize sum_of_squares" action')
  end
  if action.edit then
    error('the action carries an edit; expected only a command')
  end
  -- A CodeAction (command is a Command table) or a bare Command (command is a string).
  local command = type(action.command) == 'table' and action.command or action
  result.command = command.command

  local executed = false
  client:exec_cmd(command, { bufnr = bufnr }, function(err, res)
    executed = true
    result.execute = { err = err or vim.NIL, result = res or vim.NIL }
  end)

  local expected = 'return sum([x * x for x in nums])'
  local function has_expected()
    local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
    return text:find(expected, 1, true) ~= nil
  end
  vim.wait(wait_ms, function()
    if executed and vim.tbl_get(result.execute, 'result', 'verdict') ~= 'improved' then
      return true -- nothing will be applied: fail now rather than at the timeout
    end
    return executed and has_expected()
  end, 50)
  local changed = has_expected()
  result.lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  result.modified = vim.bo[bufnr].modified
  if not changed then
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
