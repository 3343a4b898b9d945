/**
 * Where the `metagpt-lsp` executable is: the `metagptLsp.server.path` setting, else the Python environment selected
 * with the Python extension (when it is installed), else `PATH`.
 *
 * The search returns every place it looked, so that a missing server gives the user a message that says where.
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";

const EXECUTABLE = process.platform === "win32" ? "metagpt-lsp.exe" : "metagpt-lsp";

export interface ServerCommand {
  command: string;
  args: string[];
  /** How it was found, for the output channel. */
  origin: string;
}

export class ServerNotFound extends Error {
  constructor(readonly looked: string[]) {
    super(`metagpt-lsp was not found (looked: ${looked.join("; ")}). Install it (pip install metagpt-lsp) or set ` +
      `metagptLsp.server.path.`);
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `~` and `${workspaceFolder}` expanded; a bare name is left for the PATH search. */
export function expandPath(value: string, workspaceFolder: string | undefined): string {
  let result = value.trim();
  if (result === "~" || result.startsWith("~/")) {
    result = path.join(os.homedir(), result.slice(1));
  }
  if (workspaceFolder !== undefined) {
    result = result.replaceAll("${workspaceFolder}", workspaceFolder);
  }
  return result;
}

/** The first executable `name` on `PATH`, if any. */
export function onPath(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  for (const directory of searchPath.split(path.delimiter)) {
    if (directory && isExecutable(path.join(directory, name))) {
      return path.join(directory, name);
    }
  }
  return undefined;
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  };
}

/** The bin folder of the Python environment selected in the Python extension, when there is one. */
async function selectedPythonBin(resource: vscode.Uri | undefined): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (extension === undefined) {
    return undefined;
  }
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const interpreter = api?.environments?.getActiveEnvironmentPath(resource)?.path;
    return interpreter ? path.dirname(interpreter) : undefined;
  } catch {
    return undefined; // an unusable Python extension must not stop the server from starting
  }
}

export async function findServer(resource: vscode.Uri | undefined): Promise<ServerCommand> {
  const config = vscode.workspace.getConfiguration("metagptLsp", resource);
  const args = config.get<string[]>("server.args", []).filter((arg) => typeof arg === "string");
  const folder = resource ? vscode.workspace.getWorkspaceFolder(resource) : vscode.workspace.workspaceFolders?.[0];
  const configured = expandPath(config.get<string>("server.path", ""), folder?.uri.fsPath);
  const looked: string[] = [];
  if (configured) {
    if (configured.includes("/") || configured.includes("\\")) {
      if (isExecutable(configured)) {
        return { command: configured, args, origin: "metagptLsp.server.path" };
      }
      throw new ServerNotFound([`metagptLsp.server.path = ${configured} (not an executable file)`]);
    }
    const found = onPath(configured);
    if (found) {
      return { command: found, args, origin: "metagptLsp.server.path on PATH" };
    }
    throw new ServerNotFound([`metagptLsp.server.path = ${configured} (not on PATH)`]);
  }
  const pythonBin = await selectedPythonBin(resource);
  if (pythonBin !== undefined) {
    const candidate = path.join(pythonBin, EXECUTABLE);
    if (isExecutable(candidate)) {
      return { command: candidate, args, origin: "the selected Python environment" };
    }
    looked.push(`the selected Python environment (${pythonBin})`);
  }
  const found = onPath(EXECUTABLE);
  if (found) {
    return { command: found, args, origin: "PATH" };
  }
  looked.push("PATH");
  throw new ServerNotFound(looked);
}
