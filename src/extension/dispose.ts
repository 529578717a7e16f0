/**
 * One disposal discipline for the host's classes, as VS Code's own extensions do it: what an
 * object creates (listeners, emitters, child objects) is `_register`ed when created and disposed
 * with it, once, in reverse order. Something registered after disposal is disposed at once.
 */
import type * as vscode from 'vscode';

export function disposeAll(disposables: vscode.Disposable[]): void {
  while (disposables.length > 0) disposables.pop()?.dispose();
}

export abstract class Disposable implements vscode.Disposable {
  private _isDisposed = false;
  private readonly _disposables: vscode.Disposable[] = [];

  protected get isDisposed(): boolean {
    return this._isDisposed;
  }

  protected _register<T extends vscode.Disposable>(disposable: T): T {
    if (this._isDisposed) disposable.dispose();
    else this._disposables.push(disposable);
    return disposable;
  }

  dispose(): void {
    if (this._isDisposed) return;
    this._isDisposed = true;
    disposeAll(this._disposables);
  }
}
