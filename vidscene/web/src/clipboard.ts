// Copying text to the clipboard from a click.

/**
 * Writes to the clipboard; where the page may not (an insecure origin, a refused permission) it falls back to
 * the selection-based copy, which needs no permission inside a click.
 */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch {
    /* try the old way */
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("The browser did not allow copying; select the text and copy it yourself.");
}
