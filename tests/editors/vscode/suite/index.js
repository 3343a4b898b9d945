/**
 * The extension-host suite: runs inside VS Code's real extension host (code-server's VS Code server) with the
 * metagpt-lsp extension unpacked from the built .vsix, against the real server and the scripted LLM.
 *
 * VS Code's extension host exits 0 whatever happens here, so the verdict goes to a file
 * (METAGPT_VSCODE_VERDICT): `{"results": [{"name", "ok", "error", "ms"}], "log": [...]}`; tests/test_vscode.py
 * asserts on it. Every wait is for an event (diagnostics changed, document changed, status changed) with a deadline.
 *
 * The workspace (METAGPT_VSCODE_WORKSPACE) is a git repository whose HEAD has a correct stats.py, a stub in
 * palindrome.py (a docstring and an indented empty line) and one in circle.py (an indented empty line); the scripted
 * LLM (tests/editors/vscode/script.json) reviews, explains, fixes and completes them.
 */

const fs = require("node:fs");
const path = require("node:path");
const vscode = require("vscode");

const EXTENSION_ID = "metagpt-lsp.metagpt-lsp";
const WAIT_MS = 30_000;
const log = [];

function note(message) {
  log.push(`${new Date().toISOString()} ${message}`);
}

function assert(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/** Resolve when `check()` returns a value (checked now and on each `event`), or fail after `ms`. */
function waitFor(event, check, what, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    let subscription;
    const timer = setTimeout(() => {
      subscription?.dispose();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const test = () => {
      let value;
      try {
        value = check();
      } catch (error) {
        value = undefined;
        note(`check for ${what} threw: ${error}`);
      }
      if (value) {
        clearTimeout(timer);
        subscription?.dispose();
        resolve(value);
      }
      return Boolean(value);
    };
    subscription = event(() => test());
    test();
  });
}

function reviewDiagnostics(uri) {
  return vscode.languages.getDiagnostics(uri).filter((d) => d.source === "metagpt-review");
}

async function replaceText(editor, search, replacement) {
  const text = editor.document.getText();
  const start = text.indexOf(search);
  assert(start >= 0, `${JSON.stringify(search)} is not in ${editor.document.uri.fsPath}`);
  const range = new vscode.Range(editor.document.positionAt(start), editor.document.positionAt(start + search.length));
  assert(await editor.edit((builder) => builder.replace(range, replacement)), "the edit was refused");
}

async function openEditor(workspace, name) {
  const document = await vscode.workspace.openTextDocument(path.join(workspace, name));
  return vscode.window.showTextDocument(document);
}

const tests = [
  ["the extension starts the server from the .vsix with the workspace settings", async ({ api }) => {
    assert(api.statusText.includes("metagpt"), `status bar shows ${JSON.stringify(api.statusText)}`);
    const commands = await vscode.commands.getCommands(true);
    for (const command of ["metagptLsp.showStatus", "metagptLsp.explainAndFix", "metagptLsp.generate",
      "metagptLsp.reviewFunction", "metagptLsp.showTrace", "metagptLsp.showTeamGraph",
      "metagptLsp.clearReviewCache"]) {
      assert(commands.includes(command), `palette command ${command} is missing`);
    }
    const configured = vscode.workspace.getConfiguration("metagptLsp").get("llm.baseUrl");
    assert(configured, "the workspace sets no metagptLsp.llm.baseUrl");
    const report = await vscode.commands.executeCommand("metagptLsp.showStatus");
    assert(report && report.endpoint === configured,
      `status reports endpoint ${report && report.endpoint}, expected the configured ${configured}`);
    assert(report.diagnostics === "pull", `VS Code should pull diagnostics, the server says ${report.diagnostics}`);
    // A change in the settings reaches the running server (workspace/didChangeConfiguration), and so does undoing it.
    for (const model of ["scripted-model-2", undefined]) {
      const changed = waitFor(vscode.workspace.onDidChangeConfiguration,
        () => vscode.workspace.getConfiguration("metagptLsp").get("llm.model") === (model ?? ""), "the new model");
      await vscode.workspace.getConfiguration("metagptLsp").update("llm.model", model,
        vscode.ConfigurationTarget.Workspace);
      await changed;
      const now = await vscode.commands.executeCommand("metagptLsp.showStatus");
      assert(now.model === (model ?? report.model), `after setting llm.model to ${model} the server uses ${now.model}`);
    }
  }],

  ["review diagnostics appear after save, with progress in the status bar", async (context) => {
    const editor = await openEditor(context.workspace, "stats.py");
    const uri = editor.document.uri;
    const statuses = [];
    const watching = context.api.onDidChangeStatus((text) => statuses.push(text));
    try {
      await replaceText(editor, "return total / len(xs)\n", "return total / len(xs) - 1\n");
      assert(await editor.document.save(), "saving stats.py failed");
      const found = await waitFor(vscode.languages.onDidChangeDiagnostics, () => reviewDiagnostics(uri)[0],
        "a metagpt-review diagnostic on stats.py");
      const line = editor.document.lineAt(found.range.start.line).text;
      assert(line.includes("len(xs) - 1"), `the diagnostic is on ${JSON.stringify(line)}`);
      assert(found.message.includes("subtracts 1"), `message: ${found.message}`);
      await waitFor(context.api.onDidChangeStatus, () => context.api.statusText === "$(hubot) metagpt",
        "the status bar back to idle", 10_000);
    } finally {
      watching.dispose();
    }
    note(`status bar during the review: ${JSON.stringify(statuses)}`);
    assert(statuses.some((text) => text.startsWith("$(sync~spin) metagpt: Reviewing")),
      `the status bar never showed the review: ${JSON.stringify(statuses)}`);
  }],

  ["the Explain and fix quick fix resolves and applies", async (context) => {
    const editor = await openEditor(context.workspace, "stats.py");
    const uri = editor.document.uri;
    const diagnostic = reviewDiagnostics(uri)[0];
    assert(diagnostic, "no review diagnostic to fix (the previous test failed?)");
    const actions = await vscode.commands.executeCommand("vscode.executeCodeActionProvider", uri, diagnostic.range,
      vscode.CodeActionKind.QuickFix.value, 1);
    const titles = actions.map((action) => action.title);
    const fix = actions.find((action) => action.title.startsWith("Explain and fix"));
    assert(fix, `no Explain and fix action among ${JSON.stringify(titles)}`);
    assert(fix.edit, `the action was not resolved to an edit: ${JSON.stringify(fix)}`);
    assert(await vscode.workspace.applyEdit(fix.edit), "workspace.applyEdit refused the fix");
    const text = editor.document.getText();
    assert(text.includes("    return total / len(xs)\n") && !text.includes("- 1"), `after the fix:\n${text}`);
    assert(text.includes("def spread(xs):"), "the fix touched more than the function");
    await editor.document.save();
  }],

  ["an inline suggestion is offered and accepted into the document", async (context) => {
    const editor = await openEditor(context.workspace, "palindrome.py");
    const document = editor.document;
    const cursor = new vscode.Position(2, 4); // the indented empty line under the docstring
    assert(document.lineAt(2).text === "    ", `line 3 of palindrome.py is ${JSON.stringify(document.lineAt(2).text)}`);
    editor.selection = new vscode.Selection(cursor, cursor);
    const accepted = waitFor(vscode.workspace.onDidChangeTextDocument,
      () => document.lineAt(2).text === "    return word == word[::-1]", "the suggestion accepted in palindrome.py");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    await accepted;
    assert(document.lineAt(0).text === "def is_palindrome(word):", `the signature changed:\n${document.getText()}`);
  }],

  ["a multi-line suggestion is typed through, then accepted a word, a line and the rest at a time", async (context) => {
    const editor = await openEditor(context.workspace, "circle.py");
    const document = editor.document;
    const row = document.lineCount - 2; // the stub's body: indentation only (the file ends with a line break)
    assert(document.lineAt(row).text === "    ", `line ${row + 1} of circle.py is ${JSON.stringify(document.lineAt(row).text)}`);
    const lines = () => [document.lineAt(row).text, row + 1 < document.lineCount ? document.lineAt(row + 1).text : null];
    const changed = (expected, what) => waitFor(vscode.workspace.onDidChangeTextDocument,
      () => JSON.stringify(lines()) === JSON.stringify(expected), `${what}: lines ${JSON.stringify(expected)}`);
    editor.selection = new vscode.Selection(row, 4, row, 4);
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger"); // resolves once answered
    for (const text of "tot") { // typing through: the suggestion stays, the server answers from its cache
      await vscode.commands.executeCommand("type", { text });
    }
    assert(document.lineAt(row).text === "    tot", `typed: ${JSON.stringify(document.lineAt(row).text)}`);
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    const word = changed(["    total", ""], "the next word accepted");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.acceptNextWord");
    await word;
    const line = changed(["    total = 2 * math.pi", ""], "the next line accepted, line break included");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.acceptNextLine");
    await line;
    const rest = changed(["    total = 2 * math.pi", "    return total * radius"], "the rest accepted");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    await rest;
    note(`circle.py after accepting: ${JSON.stringify(document.getText().slice(-80))}`);
  }],

  ["palette: Explain and Fix at Cursor fixes the document", async (context) => {
    const editor = await openEditor(context.workspace, "stats.py");
    const uri = editor.document.uri;
    await waitFor(vscode.languages.onDidChangeDiagnostics, () => reviewDiagnostics(uri).length === 0,
      "the review diagnostics of the fixed stats.py cleared");
    await replaceText(editor, "return total / len(xs)\n", "return total / len(xs) - 1\n");
    assert(await editor.document.save(), "saving stats.py failed");
    const found = await waitFor(vscode.languages.onDidChangeDiagnostics, () => reviewDiagnostics(uri)[0],
      "a metagpt-review diagnostic on stats.py");
    editor.selection = new vscode.Selection(found.range.start, found.range.start);
    const fixed = waitFor(vscode.workspace.onDidChangeTextDocument,
      () => !editor.document.getText().includes("- 1"), "the fix applied to stats.py");
    const answer = await vscode.commands.executeCommand("metagptLsp.explainAndFix");
    assert(answer && answer.started === true, `the server answered ${JSON.stringify(answer)}, not {started: true}`);
    await fixed; // the command answers at once; the edit follows through workspace/applyEdit
    assert(editor.document.getText().includes("    return total / len(xs)\n"), editor.document.getText());
    await editor.document.save();
  }],

  ["palette: Generate Code at Cursor fills a stub", async (context) => {
    const editor = await openEditor(context.workspace, "area.py");
    const document = editor.document;
    const cursor = new vscode.Position(2, 6); // on "pass"
    editor.selection = new vscode.Selection(cursor, cursor);
    const generated = waitFor(vscode.workspace.onDidChangeTextDocument,
      () => document.getText().includes("return width * height"), "the generated body in area.py");
    await vscode.commands.executeCommand("metagptLsp.generate");
    await generated;
    const text = document.getText();
    assert(!text.includes("pass") && text.startsWith("def area(width, height):\n"), `area.py is now:\n${text}`);
  }],

  ["palette: Show Trace and Show Team Graph open documents", async () => {
    const graph = await vscode.commands.executeCommand("metagptLsp.showTeamGraph");
    assert(graph && graph.mermaid && graph.text, `the team command returned ${JSON.stringify(graph)}`);
    const shown = vscode.window.activeTextEditor?.document;
    assert(shown && shown.languageId === "markdown" && shown.getText().includes("```mermaid"),
      `the team graph is not shown: ${shown && shown.getText().slice(0, 200)}`);
    for (const agent of ["diagnosis", "generation", "review"]) {
      assert(graph.text.includes(agent), `the graph does not name the ${agent} agent:\n${graph.text}`);
    }
    const trace = await vscode.commands.executeCommand("metagptLsp.showTrace");
    assert(typeof trace === "string" && trace.includes("coordinator"), `trace: ${trace}`);
    assert(vscode.window.activeTextEditor?.document.getText() === trace, "the trace is not shown in an editor");
  }],

  ["a server path that does not exist is reported, and fixing it restarts the server", async ({ api }) => {
    const config = () => vscode.workspace.getConfiguration("metagptLsp");
    const good = config().get("server.path");
    await config().update("server.path", "/nonexistent/metagpt-lsp", vscode.ConfigurationTarget.Workspace);
    try {
      await waitFor(api.onDidChangeStatus, () => api.statusText === "$(error) metagpt", "the error state");
      const refused = await api.ready().then(() => "started", (error) => String(error));
      assert(refused.includes("/nonexistent/metagpt-lsp") && refused.includes("not an executable file"),
        `the reason given: ${refused}`);
    } finally {
      await config().update("server.path", good, vscode.ConfigurationTarget.Workspace);
    }
    await waitFor(api.onDidChangeStatus, () => api.statusText === "$(hubot) metagpt", "the server running again");
    await api.ready();
  }],
];

async function run() {
  const verdict = process.env.METAGPT_VSCODE_VERDICT;
  const workspace = process.env.METAGPT_VSCODE_WORKSPACE;
  const results = [];
  try {
    assert(verdict && workspace, "METAGPT_VSCODE_VERDICT and METAGPT_VSCODE_WORKSPACE must be set");
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert(extension, `extension ${EXTENSION_ID} is not installed`);
    await openEditor(workspace, "stats.py"); // activates the extension (onLanguage:python)
    note(`PATH in the extension host: ${process.env.PATH}`);
    const api = await extension.activate();
    await api.ready();
    note(`extension ${extension.packageJSON.version} from ${extension.extensionPath}; status ${api.statusText}`);
    const context = { api, workspace };
    for (const [name, test] of tests) {
      const started = Date.now();
      try {
        await test(context);
        results.push({ name, ok: true, ms: Date.now() - started });
      } catch (error) {
        results.push({ name, ok: false, error: String(error && error.stack || error), ms: Date.now() - started });
      }
      note(`${results.at(-1).ok ? "PASS" : "FAIL"} ${name}`);
    }
  } catch (error) {
    results.push({ name: "setup", ok: false, error: String(error && error.stack || error), ms: 0 });
  } finally {
    if (verdict) {
      fs.writeFileSync(`${verdict}.partial`, JSON.stringify({ results, log }, null, 2));
      fs.renameSync(`${verdict}.partial`, verdict); // the file appears whole
    }
  }
}

module.exports = { run };
