"""Intake: pick up complete files from organisations' drop folders, and receive, check and stage each."""

from childindex.intake.check import check_file
from childindex.intake.discovery import UnregisteredDrop, pending_everywhere, pending_files, unregistered_drops
from childindex.intake.process import IntakeResult, process_file, run_intake
from childindex.intake.reprocess import reprocess

__all__ = [
    "IntakeResult",
    "UnregisteredDrop",
    "check_file",
    "pending_everywhere",
    "pending_files",
    "process_file",
    "reprocess",
    "run_intake",
    "unregistered_drops",
]
