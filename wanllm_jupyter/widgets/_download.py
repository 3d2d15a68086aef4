"""Files handed to the browser as downloads (the chart's CSV button), as bqplot's
``save_png`` does for PNG: nothing is written where the kernel runs."""

from __future__ import annotations

import anywidget
import traitlets as T

_ESM = """
export default {
  render({ model, el }) {
    el.style.display = 'none';
    const onMessage = (msg, buffers) => {
      if (msg?.type !== 'download' || !buffers?.length) {
        return;
      }
      const url = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime }));
      const a = document.createElement('a');
      a.href = url;
      a.download = msg.name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    };
    model.on('msg:custom', onMessage);
    return () => model.off('msg:custom', onMessage);
  }
};
"""


class BrowserDownload(anywidget.AnyWidget):
    """An invisible widget: :meth:`send_file` makes each browser view showing it
    download the bytes (it must be displayed, like ``save_png``)."""

    _esm = _ESM
    # left out of static HTML exports (html_export.drop_interactive_only)
    interactive_only = T.Bool(True, read_only=True).tag(sync=True)

    def send_file(self, name: str, data: bytes, mime: str = "application/octet-stream") -> None:
        """Download ``data`` as ``name`` in the browser."""
        self.send({"type": "download", "name": name, "mime": mime}, [data])
