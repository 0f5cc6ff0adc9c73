"""Resuming on the data a run started with.

fairseq saves the training iterator's position in every checkpoint (epoch, batches done
in it) and, on resume, skips that many batches of the epoch it draws again. The draw
depends on the manifests: one line added, removed or changed gives other batches, so a
resumed epoch would silently repeat some utterances and never show others (or fairseq
stops with "Cannot resume training due to dataloader mismatch"). Here the saved position
also records the sha256 of each training manifest, and resuming mid-epoch on manifests
that differ is refused with the files named and what to do. At an epoch boundary a
changed manifest is fine (the next epoch is drawn from it): a warning says so.
"""

import logging
from typing import Dict

from fairseq.data.iterators import EpochBatchIterator

from xlsr_plugin.errors import InputError

logger = logging.getLogger(__name__)


class ManifestCheckedIterator(EpochBatchIterator):
    """fairseq's ``EpochBatchIterator`` whose state carries ``manifests`` (name -> sha256)."""

    manifests: Dict[str, str]

    @classmethod
    def adopt(cls, itr, manifests: Dict[str, str]):
        """Make ``itr`` (built by fairseq's ``get_batch_iterator``, possibly cached there)
        one of these: the same object, with the two methods below."""
        if isinstance(itr, EpochBatchIterator):
            if type(itr) is EpochBatchIterator:
                itr.__class__ = cls
            if isinstance(itr, cls):
                itr.manifests = manifests
        return itr

    def state_dict(self):
        return {**super().state_dict(), "manifests": dict(self.manifests)}

    def load_state_dict(self, state_dict):
        saved = state_dict.get("manifests")
        if isinstance(saved, dict):
            changed = sorted(n for n in set(saved) | set(self.manifests) if saved.get(n) != self.manifests.get(n))
            if changed:
                names = ", ".join(changed)
                if state_dict.get("iterations_in_epoch", 0) > 0:
                    raise InputError(
                        f"the training manifest(s) {names} changed since the checkpoint was written, "
                        f"which stopped after {state_dict['iterations_in_epoch']} batch(es) of epoch "
                        f"{state_dict.get('epoch')}; resuming would continue a different draw of that "
                        "epoch. Restore the manifests, or restart the epoch on the new ones with "
                        "checkpoint.reset_dataloader=true (fairseq-train: --reset-dataloader)"
                    )
                logger.warning(f"the training manifest(s) {names} changed since the checkpoint; "
                               f"epoch {state_dict.get('epoch')} is drawn from them as they are now")
        super().load_state_dict(state_dict)
