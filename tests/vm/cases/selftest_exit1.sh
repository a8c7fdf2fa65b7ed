# Harness self-test: the guest script fails; vmbed must report exit status 1.
echo "selftest: exiting 1 on purpose"
exit 1
