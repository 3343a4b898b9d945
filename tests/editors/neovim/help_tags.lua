--- Drive: index a copy of the plugin's help file with :helptags, open every tag with :help, and list the user
--- commands and options the plugin has, so the test can check that each one is documented under its own tag.
---
--- nvim --headless --clean -l help_tags.lua PLUGIN_DIR VERDICT_JSON DOC_COPY_RTP

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)
local doc_rtp = h.args[1]

h:run(function()
  vim.cmd.helptags(vim.fn.fnameescape(vim.fs.joinpath(doc_rtp, 'doc')))
  vim.opt.runtimepath:prepend(doc_rtp)
  local tags, broken = {}, {}
  for line in io.lines(vim.fs.joinpath(doc_rtp, 'doc', 'tags')) do
    local tag = line:match('^([^\t]+)\t')
    table.insert(tags, tag)
    local ok, err = pcall(vim.cmd.help, tag)
    if not ok or vim.bo.filetype ~= 'help' then
      table.insert(broken, tag .. ': ' .. tostring(err))
    end
    pcall(vim.cmd.helpclose)
  end
  h:record('tags', tags)
  h:record('broken', broken)
  local options = {}
  for key, value in pairs(require('metagpt_lsp.config').defaults) do
    if type(value) == 'table' and next(value) ~= nil and not vim.islist(value) then
      for sub in pairs(value) do
        table.insert(options, key .. '.' .. sub)
      end
    else
      table.insert(options, key)
    end
  end
  h:record('options', options)
  h:record('commands', vim.tbl_filter(function(name)
    return vim.startswith(name, 'Metagpt')
  end, vim.tbl_keys(vim.api.nvim_get_commands({}))))
end)
