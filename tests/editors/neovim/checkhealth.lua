--- Drive: `:checkhealth metagpt_lsp` twice — first configured with an endpoint nobody listens on and no server
--- running yet (the report must say the endpoint is not reachable), then with the environment's endpoint and the
--- server attached to a buffer (the report must name the server's version and find the endpoint answering).
---
--- nvim --headless --clean -l checkhealth.lua PLUGIN_DIR VERDICT_JSON FILE DEAD_BASE_URL

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)
local file, dead_url = unpack(h.args)

--- Run the check and return the report's text (it opens in a new tab).
local function checkhealth()
  vim.cmd('tab checkhealth metagpt_lsp')
  local text = h.text(0)
  vim.cmd('tabclose')
  return text
end

h:run(function()
  require('metagpt_lsp').setup({ settings = { llm = { baseUrl = dead_url } } })
  h:record('without_server', checkhealth())

  local bufnr = h:open_attached({}, file)
  h:record('with_server', checkhealth())
end)
