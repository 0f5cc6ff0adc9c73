"""An InputError raised in a data-loader worker reads as its own message in the trainer."""

import pytest
from torch._utils import ExceptionWrapper

from xlsr_plugin.errors import InputError


def test_input_error_from_a_data_loader_worker_keeps_its_message():
    try:
        raise InputError("train_ky.tsv:3: /a/b.flac: file is empty (0 bytes)")
    except InputError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 2")
    with pytest.raises(InputError) as caught:
        wrapped.reraise()  # what torch's DataLoader does in the trainer
    assert "Original Traceback" in caught.value.args[0]  # torch's wrapping, as raised
    assert str(caught.value) == "train_ky.tsv:3: /a/b.flac: file is empty (0 bytes) (in DataLoader worker process 2)"
    assert str(InputError("x.tsv:1: no root")) == "x.tsv:1: no root"
