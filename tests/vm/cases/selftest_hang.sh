# Harness self-test: the guest never finishes; vmbed must time out and clean up.
echo "selftest: hanging"
echo "VMBED-SELFTEST-HANGING"
sleep 100000
