/* vxlan_encap register block: generated from its description; do not edit. */
#ifndef AMNIC_VXLAN_ENCAP_H
#define AMNIC_VXLAN_ENCAP_H

#define AMNIC_VXLAN_ENCAP_TYPE_ID_VALUE                  0x56585450u
#define AMNIC_VXLAN_ENCAP_VERSION_VALUE                  0x00010000u
#define AMNIC_VXLAN_ENCAP_SIZE_VALUE                     0x80u

#define AMNIC_VXLAN_ENCAP_TYPE_ID_OFFSET                 0x000u  /* RO, 32 bit */
#define AMNIC_VXLAN_ENCAP_TYPE_ID_RESET                  0x56585450u
#define AMNIC_VXLAN_ENCAP_VERSION_OFFSET                 0x004u  /* RO, 32 bit */
#define AMNIC_VXLAN_ENCAP_VERSION_RESET                  0x10000u
#define AMNIC_VXLAN_ENCAP_SIZE_OFFSET                    0x008u  /* RO, 32 bit */
#define AMNIC_VXLAN_ENCAP_SIZE_RESET                     0x80u
#define AMNIC_VXLAN_ENCAP_TEMPLATES_OFFSET               0x00Cu  /* RO, 32 bit */
#define AMNIC_VXLAN_ENCAP_TEMPLATES_RESET                0x0u
#define AMNIC_VXLAN_ENCAP_INDEX_OFFSET                   0x010u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_INDEX_RESET                    0x0u
#define AMNIC_VXLAN_ENCAP_COMMAND_OFFSET                 0x014u  /* W1S, 32 bit */
#define AMNIC_VXLAN_ENCAP_COMMAND_RESET                  0x0u
#define AMNIC_VXLAN_ENCAP_COMMAND_WRITE_SHIFT            0
#define AMNIC_VXLAN_ENCAP_COMMAND_WRITE_MASK             0x1u
#define AMNIC_VXLAN_ENCAP_COMMAND_READ_SHIFT             1
#define AMNIC_VXLAN_ENCAP_COMMAND_READ_MASK              0x2u
#define AMNIC_VXLAN_ENCAP_DATA_0_OFFSET                  0x040u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_0_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_1_OFFSET                  0x044u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_1_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_2_OFFSET                  0x048u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_2_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_3_OFFSET                  0x04Cu  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_3_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_4_OFFSET                  0x050u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_4_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_5_OFFSET                  0x054u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_5_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_6_OFFSET                  0x058u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_6_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_7_OFFSET                  0x05Cu  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_7_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_8_OFFSET                  0x060u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_8_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_9_OFFSET                  0x064u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_9_RESET                   0x0u
#define AMNIC_VXLAN_ENCAP_DATA_10_OFFSET                 0x068u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_10_RESET                  0x0u
#define AMNIC_VXLAN_ENCAP_DATA_11_OFFSET                 0x06Cu  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_11_RESET                  0x0u
#define AMNIC_VXLAN_ENCAP_DATA_12_OFFSET                 0x070u  /* RW, 32 bit */
#define AMNIC_VXLAN_ENCAP_DATA_12_RESET                  0x0u

#endif /* AMNIC_VXLAN_ENCAP_H */
