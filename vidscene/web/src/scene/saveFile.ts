// Handing downloaded bytes to the browser's own "save file": what every download button ends with.

/** Saves `blob` under `name` through a temporary link; the object URL outlives the click long enough for
 * the browser to start the save. */
export function saveFile(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Give the browser time to start the save before the blob goes away.
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
