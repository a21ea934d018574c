"""Intake: pick up complete files from an agency's drop folder, and receive, check and stage each."""

from childindex.intake.check import check_file
from childindex.intake.discovery import pending_files
from childindex.intake.process import IntakeResult, process_file, run_intake
from childindex.intake.reprocess import reprocess

__all__ = ["IntakeResult", "check_file", "pending_files", "process_file", "reprocess", "run_intake"]
