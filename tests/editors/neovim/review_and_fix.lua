--- Drive: open a Python file of a git repo, break a function, save; the team's review appears as diagnostics
--- (source metagpt-review); :MetagptFix on the finding under the cursor changes the buffer to the fixed text;
--- :MetagptStatus and :MetagptTrace answer; :MetagptGenerate on a stub function fills in its body; :MetagptReview
--- reviews the file again and the fixed finding is gone.
---
--- nvim --headless --clean -l review_and_fix.lua PLUGIN_DIR VERDICT_JSON FILE

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)
local file = h.args[1]

h:run(function()
  local progress = {}
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function()
      local line = require('metagpt_lsp').statusline()
      if line ~= '' and progress[#progress] ~= line then
        table.insert(progress, line)
      end
    end,
  })
  local done
  vim.api.nvim_create_autocmd('User', {
    pattern = 'MetagptActionDone',
    callback = function(args)
      done = args.data
    end,
  })

  local bufnr = h:open_attached({ settings = { review = { onSave = true }, logLevel = 'info' } }, file)

  -- Break the function the way a user would: go to the line and append to it.
  local row = vim.fn.search([[return total / len(xs)$]])
  assert(row > 0, 'the test file lacks the line to break')
  vim.cmd('normal! A - 1')
  vim.cmd.write()

  local function review_diagnostics()
    return vim.tbl_filter(function(d)
      return d.source == 'metagpt-review'
    end, vim.diagnostic.get(bufnr))
  end
  h:wait('review diagnostics after save', 30000, function()
    return #review_diagnostics() > 0
  end)
  local finding = review_diagnostics()[1]
  h:record('review', vim.tbl_map(function(d)
    return { lnum = d.lnum, col = d.col, message = d.message, severity = d.severity, source = d.source }
  end, review_diagnostics()))
  h:record('broken_text', h.text(bufnr))

  -- Explain and fix at the cursor.
  vim.api.nvim_win_set_cursor(0, { finding.lnum + 1, finding.col })
  vim.cmd('MetagptFix')
  h:wait('explain-and-fix finished', 30000, function()
    return done ~= nil
  end)
  h:record('fix', done)
  h:record('fixed_text', h.text(bufnr))
  h:record('progress', progress)

  local report
  require('metagpt_lsp.commands').status(function(r)
    report = r
  end)
  h:wait('status answered', 10000, function()
    return report ~= nil
  end)
  h:record('status', report)

  vim.cmd('MetagptTrace')
  h:wait('trace shown', 10000, function()
    return vim.api.nvim_buf_get_name(0):match('metagpt://trace$') ~= nil
  end)
  h:record('trace', h.text(0))
  vim.cmd.close()

  -- Generate: a stub function at the end of the file, the cursor on its name.
  local stub = { '', '', 'def is_palindrome(word):', '    """True when word reads the same backwards."""', '    pass' }
  vim.api.nvim_buf_set_lines(bufnr, -1, -1, false, stub)
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(bufnr) - 2, 4 })
  done = nil
  vim.cmd('MetagptGenerate')
  h:wait('generate finished', 30000, function()
    return done ~= nil
  end)
  h:record('generate', done)
  h:record('generated_text', h.text(bufnr))

  -- Review the file now: the fixed mean and the new function; the model finds nothing this time.
  local reviewed = function()
    return vim.iter(h.verdict.messages):any(function(m)
      return m.message:match('^metagpt%-lsp: review done') ~= nil
    end)
  end
  vim.cmd('MetagptReview')
  h:wait('file review finished', 30000, reviewed)
  h:wait('old findings gone', 5000, function()
    return #review_diagnostics() == 0
  end)
end)
